//! The static pages, embedded at build time from `static/` (see `build.rs`). Templates
//! (`setup.html`, `doctor.html`, the iOS profile) are not here: served raw, their `{{…}}`
//! placeholders would show; `web::onboarding` fills them in and serves them.

/// Every file under `static/`, by path relative to it.
const FILES: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The file at `path` (relative to `static/`), with its content type.
pub fn find(path: &str) -> Option<(&'static [u8], &'static str)> {
    let (_, bytes) = FILES.iter().find(|(name, _)| *name == path)?;
    Some((bytes, content_type(path)))
}

/// The content type for a file name.
pub fn content_type(path: &str) -> &'static str {
    let extension = path.rsplit_once('.').map_or("", |(_, ext)| ext);
    match extension {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "ts" => "application/typescript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "webmanifest" => "application/manifest+json",
        "txt" | "md" => "text/plain; charset=utf-8",
        "pem" => "application/x-pem-file",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_page_is_embedded_as_html() {
        let (bytes, kind) = find("index.html").unwrap();
        assert!(!bytes.is_empty());
        assert_eq!(kind, "text/html; charset=utf-8");
        assert!(find("nope.html").is_none());
    }

    #[test]
    fn templates_are_not_served_raw() {
        for template in ["setup.html", "profile.mobileconfig"] {
            assert!(find(template).is_none(), "{template}");
        }
        for (name, bytes) in FILES.iter().filter(|(name, _)| name.ends_with(".html")) {
            assert!(!String::from_utf8_lossy(bytes).contains("{{"), "{name}");
        }
        assert!(
            find("client.js").is_some(),
            "JSDoc `{{…}}` types are no placeholders"
        );
    }

    #[test]
    fn typescript_declarations_and_modules_have_their_types() {
        assert_eq!(
            content_type("client.d.ts"),
            "application/typescript; charset=utf-8"
        );
        assert_eq!(content_type("client.js"), "text/javascript; charset=utf-8");
    }
}

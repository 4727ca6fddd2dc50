//! One webhook endpoint's HTTP client: hyper's client over rustls (the `ring` provider),
//! trusting the system's roots plus the webhook's `ca`, HTTP/1.1, no redirects followed.
//! Each webhook has its own client, so one endpoint's connections never hold another's.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Why a webhook's client cannot be built; one line naming the file or URL (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The `ca` file cannot be read or holds no certificate.
    #[error("webhook {webhook}: ca: {message}")]
    Ca {
        /// The webhook's name.
        webhook: String,
        /// What is wrong, naming the file.
        message: String,
    },
    /// The URL is not one hyper can use.
    #[error("webhook {webhook}: url {url}: {message}")]
    Url {
        /// The webhook's name.
        webhook: String,
        /// The URL.
        url: String,
        /// What is wrong.
        message: String,
    },
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: delivered.
    Delivered,
    /// Any other status (redirects included: never followed).
    Refused(u16),
    /// No answer in time.
    Timeout,
    /// Connection, TLS or protocol failure.
    Failed(String),
}

impl Outcome {
    /// The `result` label of `relay_webhook_deliveries_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Refused(_) => "refused",
            Outcome::Timeout => "timeout",
            Outcome::Failed(_) => "failed",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Delivered => f.write_str("delivered"),
            Outcome::Refused(status) if (300..400).contains(status) => {
                write!(
                    f,
                    "HTTP {status} (redirects are not followed: configure the final URL)"
                )
            }
            Outcome::Refused(status) => write!(f, "HTTP {status}"),
            Outcome::Timeout => f.write_str("no answer within the attempt's deadline"),
            Outcome::Failed(why) => f.write_str(why),
        }
    }
}

/// A client bound to one webhook's URL.
#[derive(Clone)]
pub struct Endpoint {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    uri: Uri,
}

impl Endpoint {
    /// The client of webhook `name` posting to `url`, trusting `ca` besides the system.
    pub fn new(name: &str, url: &str, ca: Option<&Path>) -> Result<Endpoint, ClientError> {
        let uri: Uri =
            url.parse()
                .map_err(|err: hyper::http::uri::InvalidUri| ClientError::Url {
                    webhook: name.to_owned(),
                    url: url.to_owned(),
                    message: err.to_string(),
                })?;
        let roots = roots(name, uri.scheme_str() == Some("https"), ca)?;
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| ClientError::Url {
                webhook: name.to_owned(),
                url: url.to_owned(),
                message: err.to_string(),
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Endpoint { client, uri })
    }

    /// POSTs `body` with `headers`; gives up after `deadline`.
    pub async fn post(
        &self,
        headers: &[(&'static str, String)],
        body: Vec<u8>,
        deadline: Duration,
    ) -> Outcome {
        let mut request = Request::post(self.uri.clone());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let request = match request.body(Full::new(Bytes::from(body))) {
            Ok(request) => request,
            Err(err) => return Outcome::Failed(err.to_string()),
        };
        let exchange = async {
            let response = self.client.request(request).await?;
            let status = response.status();
            // Read (and drop) the answer so the connection can be reused.
            let _ = response.into_body().collect().await;
            Ok::<_, hyper_util::client::legacy::Error>(status)
        };
        match tokio::time::timeout(deadline, exchange).await {
            Err(_) => Outcome::Timeout,
            Ok(Err(err)) => Outcome::Failed(error_chain(&err)),
            Ok(Ok(status)) if status.is_success() => Outcome::Delivered,
            Ok(Ok(status)) => Outcome::Refused(status.as_u16()),
        }
    }
}

/// The system's roots (for `https://` URLs) and the webhook's `ca`.
fn roots(name: &str, https: bool, ca: Option<&Path>) -> Result<rustls::RootCertStore, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    if https {
        let native = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(native.certs);
        if added == 0 && ca.is_none() {
            tracing::warn!(
                webhook = name,
                "no system trust anchors found; set the webhook's ca"
            );
        }
    }
    if let Some(file) = ca {
        let bad = |message: String| ClientError::Ca {
            webhook: name.to_owned(),
            message,
        };
        let certs = crate::certs::files::certs(file).map_err(|err| bad(err.to_string()))?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            let file = file.display();
            return Err(bad(format!("{file}: holds no usable trust anchor")));
        }
    }
    Ok(roots)
}

/// An error with its sources, on one line.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text += &format!(": {cause}");
        source = cause.source();
    }
    text
}

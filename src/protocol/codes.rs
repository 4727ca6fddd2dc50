//! Caisse-AP code tables: AF reasons (French label as terminals print it, English reason),
//! CC applications and CI entry modes. Unknown codes get `None`, never a panic: callers
//! show the code itself.

/// AF code → (French label, English reason).
const REASONS: &[(&str, &str, &str)] = &[
    ("00", "Inconnu", "unknown"),
    ("01", "Transaction autorisée", "authorized"),
    ("02", "Appel phonie", "phone call needed"),
    ("03", "Forçage", "forced"),
    ("04", "Refusée", "refused"),
    ("05", "Interdite", "forbidden"),
    ("06", "Abandon", "abandoned"),
    ("07", "Non aboutie", "not completed"),
    (
        "08",
        "Opération non effectuée – time-out saisie",
        "input time-out",
    ),
    (
        "09",
        "Opération non effectuée – erreur format message",
        "message format error",
    ),
    (
        "10",
        "Opération non effectuée – erreur sélection",
        "selection error",
    ),
    (
        "11",
        "Opération non effectuée – abandon opérateur",
        "cancelled by the operator",
    ),
    (
        "12",
        "Opération non effectuée – type d'action demandé inconnu",
        "unknown action type",
    ),
    ("13", "Devise non supportée", "currency not supported"),
];

/// CC code → application name: caisse-ap.md's table and its 2026 additions. `00E` is
/// CMCIC-Pay for the OCA module but CONECS for HiPay: both are named. A code missing here is
/// shown as itself.
const APPLICATIONS: &[(&str, &str)] = &[
    ("000", "Autre"),
    ("001", "CB"),
    ("002", "American Express"),
    ("003", "CB enseigne"),
    ("004", "Cetelem"),
    ("005", "Cofinoga"),
    ("006", "Diners Club"),
    ("007", "CB-Pass"),
    ("008", "Franfinance"),
    ("009", "JCB"),
    ("00A", "Banque Accord"),
    ("00B", "CB sans contact"),
    ("00C", "Chèque"),
    ("00D", "American Express sans contact"),
    ("00E", "CMCIC-Pay / CONECS"),
    ("00F", "DCC"),
    ("00G", "UPI sans contact (QuickPass)"),
    ("00I", "CPEI"),
    ("00S", "Carte magasin"),
    ("00U", "UPI / NX3"),
    ("00V", "ANCV chèques-vacances"),
    ("10E", "CONECS sans contact"),
];

/// CI code → entry mode.
const ENTRY_MODES: &[(&str, &str)] = &[
    ("0", "any"),
    ("1", "contact"),
    ("2", "contactless"),
    ("3", "magstripe"),
    ("4", "manual"),
];

/// The AF code: the first two characters (a CB2A extension may follow).
pub fn af_code(af: &str) -> &str {
    af.char_indices().nth(2).map_or(af, |(i, _)| &af[..i])
}

/// French label of an AF code, as terminals print it.
pub fn af_label(code: &str) -> Option<&'static str> {
    REASONS.iter().find(|r| r.0 == code).map(|r| r.1)
}

/// English reason of an AF code.
pub fn af_reason(code: &str) -> Option<&'static str> {
    REASONS.iter().find(|r| r.0 == code).map(|r| r.2)
}

/// Application name of a CC code.
pub fn application(cc: &str) -> Option<&'static str> {
    APPLICATIONS.iter().find(|a| a.0 == cc).map(|a| a.1)
}

/// Entry mode of a CI code.
pub fn entry_mode(ci: &str) -> Option<&'static str> {
    ENTRY_MODES.iter().find(|m| m.0 == ci).map(|m| m.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn af_code_is_the_first_two_characters() {
        assert_eq!(af_code("04"), "04");
        assert_eq!(af_code("04 CB2A extension"), "04");
        assert_eq!(af_code("é4x"), "é4");
        assert_eq!(af_code("4"), "4");
    }

    #[test]
    fn tables_answer_known_codes_only() {
        assert_eq!(af_label("04"), Some("Refusée"));
        assert_eq!(af_reason("11"), Some("cancelled by the operator"));
        assert_eq!(af_reason("99"), None);
        assert_eq!(application("00B"), Some("CB sans contact"));
        assert_eq!(application("ZZZ"), None);
        assert_eq!(application("00V"), Some("ANCV chèques-vacances"));
        assert_eq!(application("10E"), Some("CONECS sans contact"));
        assert_eq!(entry_mode("2"), Some("contactless"));
        assert_eq!(entry_mode("9"), None);
    }
}

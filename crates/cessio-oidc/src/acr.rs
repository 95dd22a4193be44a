//! The SPID authentication levels, as `acr_values` asks for them and `acr` reports them.
//! CIE id uses the same three URIs.

/// A SPID level; the order is the strength, so a returned level can be compared with the
/// one asked for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum AcrLevel {
    /// Password only.
    SpidL1,
    /// A second factor (one-time code, app): the usual level for a public service.
    SpidL2,
    /// A second factor on a hardware device (smart card, CIE with its PIN).
    SpidL3,
}

impl AcrLevel {
    pub const ALL: [AcrLevel; 3] = [AcrLevel::SpidL1, AcrLevel::SpidL2, AcrLevel::SpidL3];

    pub fn uri(self) -> &'static str {
        match self {
            AcrLevel::SpidL1 => "https://www.spid.gov.it/SpidL1",
            AcrLevel::SpidL2 => "https://www.spid.gov.it/SpidL2",
            AcrLevel::SpidL3 => "https://www.spid.gov.it/SpidL3",
        }
    }

    /// Exactly one of the three URIs; anything else is no level at all.
    pub fn from_uri(uri: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|level| level.uri() == uri)
    }
}

impl std::fmt::Display for AcrLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AcrLevel::SpidL1 => "livello 1",
            AcrLevel::SpidL2 => "livello 2",
            AcrLevel::SpidL3 => "livello 3",
        })
    }
}

/// `1`, `L2`, `SpidL3` or the full URI, as an operator would write it on the command line.
impl std::str::FromStr for AcrLevel {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if let Some(level) = Self::from_uri(text) {
            return Ok(level);
        }
        let short = text.trim().to_ascii_uppercase();
        let digit = short
            .strip_prefix("SPIDL")
            .or_else(|| short.strip_prefix('L'))
            .unwrap_or(&short);
        match digit {
            "1" => Ok(AcrLevel::SpidL1),
            "2" => Ok(AcrLevel::SpidL2),
            "3" => Ok(AcrLevel::SpidL3),
            _ => Err(format!(
                "livello SPID sconosciuto {text:?}: 1, 2, 3 o https://www.spid.gov.it/SpidL1…L3"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered_by_strength() {
        assert!(AcrLevel::SpidL1 < AcrLevel::SpidL2);
        assert!(AcrLevel::SpidL2 < AcrLevel::SpidL3);
    }

    #[test]
    fn uris_round_trip_and_nothing_else_is_a_level() {
        for level in AcrLevel::ALL {
            assert_eq!(AcrLevel::from_uri(level.uri()), Some(level));
        }
        assert_eq!(AcrLevel::from_uri("https://www.spid.gov.it/SpidL4"), None);
        assert_eq!(AcrLevel::from_uri("https://www.spid.gov.it/spidl2"), None);
    }

    #[test]
    fn command_line_spellings() {
        for text in ["2", "L2", "spidl2", "https://www.spid.gov.it/SpidL2"] {
            assert_eq!(text.parse(), Ok(AcrLevel::SpidL2), "{text}");
        }
        assert!("4".parse::<AcrLevel>().is_err());
    }
}

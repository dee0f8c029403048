//! Tenant names: lowercase DNS labels (RFC 1123), 1-63 characters of `[a-z0-9-]`, neither
//! starting nor ending with `-`. A name becomes a directory name, a container id, a hostname and
//! a log file name, so it is checked before anything touches the filesystem.

use std::fmt;

/// Why a tenant name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("tenant name is empty: use 1-63 characters of [a-z0-9-]")]
    Empty,
    #[error("tenant name {0:?} is longer than 63 characters")]
    TooLong(String),
    #[error(
        "tenant name {name:?} has the character {ch:?} at byte {at}: use only lowercase letters, digits and '-'"
    )]
    BadChar { name: String, ch: char, at: usize },
    #[error("tenant name {0:?} starts or ends with '-': a DNS label may not")]
    Hyphen(String),
}

/// A checked tenant name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TenantName(String);

impl TenantName {
    /// Check `s` and wrap it.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if s.len() > 63 {
            return Err(NameError::TooLong(s.chars().take(80).collect()));
        }
        if let Some((at, ch)) = s
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(NameError::BadChar {
                name: s.to_string(),
                ch,
                at,
            });
        }
        if s.starts_with('-') || s.ends_with('-') {
            return Err(NameError::Hyphen(s.to_string()));
        }
        Ok(TenantName(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The OCI container id of this tenant's gateway.
    pub fn container_id(&self) -> String {
        format!("reeve-{}", self.0)
    }
}

impl fmt::Display for TenantName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for TenantName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        TenantName::parse(s)
    }
}

impl<'de> serde::Deserialize<'de> for TenantName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TenantName::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for TenantName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dns_labels() {
        for ok in ["a", "acme", "beta-2", "0", "a1-b2-c3", &"x".repeat(63)] {
            assert_eq!(TenantName::parse(ok).expect(ok).as_str(), ok);
        }
    }

    #[test]
    fn refuses_everything_else() {
        assert_eq!(TenantName::parse(""), Err(NameError::Empty));
        assert!(matches!(
            TenantName::parse(&"x".repeat(64)),
            Err(NameError::TooLong(_))
        ));
        for (bad, ch) in [
            ("..", '.'),
            (".", '.'),
            ("a/b", '/'),
            ("/etc", '/'),
            ("a\0b", '\0'),
            ("Acme", 'A'),
            ("acme ", ' '),
            ("ac_me", '_'),
            ("é", 'é'),
            ("../beta", '.'),
        ] {
            match TenantName::parse(bad) {
                Err(NameError::BadChar { ch: got, .. }) => assert_eq!(got, ch, "{bad:?}"),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
        assert!(matches!(TenantName::parse("-a"), Err(NameError::Hyphen(_))));
        assert!(matches!(TenantName::parse("a-"), Err(NameError::Hyphen(_))));
    }

    #[test]
    fn error_messages_say_what_to_do() {
        let e = TenantName::parse("a/b").unwrap_err().to_string();
        assert!(e.contains("'/'") && e.contains("lowercase"), "{e}");
        assert!(TenantName::parse("")
            .unwrap_err()
            .to_string()
            .contains("1-63"));
    }

    #[test]
    fn container_id_and_serde() {
        let n = TenantName::parse("acme").unwrap();
        assert_eq!(n.container_id(), "reeve-acme");
        let j = serde_json::to_string(&n).unwrap();
        assert_eq!(j, "\"acme\"");
        assert!(serde_json::from_str::<TenantName>("\"../x\"").is_err());
    }
}

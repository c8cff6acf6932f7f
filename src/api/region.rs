//! The Restb.ai regions and their base URLs.

use std::str::FromStr;

/// A Restb.ai region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Region {
    /// `https://api-us.restb.ai`
    #[default]
    Us,
    /// `https://api-eu.restb.ai`
    Eu,
}

impl Region {
    /// The region's base URL.
    pub fn base_url(self) -> &'static str {
        match self {
            Region::Us => "https://api-us.restb.ai",
            Region::Eu => "https://api-eu.restb.ai",
        }
    }
}

impl FromStr for Region {
    type Err = ParseRegionError;
    fn from_str(text: &str) -> Result<Region, ParseRegionError> {
        match text.to_ascii_lowercase().as_str() {
            "us" => Ok(Region::Us),
            "eu" => Ok(Region::Eu),
            _ => Err(ParseRegionError {
                given: text.to_string(),
            }),
        }
    }
}

/// The error of parsing a [`Region`] from a name that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("unknown region '{given}': use us or eu")]
pub struct ParseRegionError {
    /// The text that was given.
    pub given: String,
}

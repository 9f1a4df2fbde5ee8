//! One-line text of an error and its causes, for messages and the command line.

use std::error::Error;

/// Joins the `Display` of `error` and each of its sources with ": ", skipping a source whose
/// text the previous part already contains (errors that embed their source in their own
/// message). `Debug` output is never used: for SDK errors it can carry whole responses.
pub fn one_line(error: &(dyn Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn Error + 'static)> = Some(error);
    while let Some(item) = current {
        let text = item.to_string();
        if parts
            .last()
            .is_none_or(|previous| !previous.contains(&text))
        {
            parts.push(text);
        }
        current = item.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {source}")]
    struct Embedding {
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Wrapping {
        #[source]
        inner: std::io::Error,
    }

    #[test]
    fn skips_source_already_in_message() {
        let error = Embedding {
            source: std::io::Error::other("disk full"),
        };
        assert_eq!(one_line(&error), "outer: disk full");
    }

    #[test]
    fn appends_source_not_in_message() {
        let error = Wrapping {
            inner: std::io::Error::other("disk full"),
        };
        assert_eq!(one_line(&error), "outer: disk full");
    }
}

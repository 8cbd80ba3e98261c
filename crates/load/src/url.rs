//! The request URL: scheme, host, port and path, checked before a run and read when it starts.

use crate::error::LoadError;

/// A URL the client can send requests to.
pub(crate) struct ParsedUrl {
    pub(crate) https: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) path: String,
}

/// Parses an `http://` or `https://` URL (no resolution); the path is `/` when empty.
pub(crate) fn parse(url: &str) -> Result<ParsedUrl, LoadError> {
    let err = |reason: &str| LoadError::Url {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| err(&e.to_string()))?;
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(err("only http:// and https:// URLs are supported")),
    };
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| err("the URL has no host"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/".into());
    Ok(ParsedUrl {
        https,
        host,
        port,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_scheme_host_port_and_path() {
        let u = parse("https://[::1]/a?b=1").unwrap();
        assert!(u.https);
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 443, "/a?b=1")
        );
        let u = parse("http://127.0.0.1:8080").unwrap();
        assert!(!u.https);
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8080, "/")
        );
        for bad in ["ftp://h/", "127.0.0.1:80", "http:///x"] {
            assert!(matches!(parse(bad), Err(LoadError::Url { .. })), "{bad}");
        }
    }
}

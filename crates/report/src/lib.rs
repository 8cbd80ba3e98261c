//! The comparison result model and its renderers (text, Markdown, JSON, HTML).
#![deny(missing_docs)]

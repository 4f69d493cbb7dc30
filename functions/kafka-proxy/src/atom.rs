//! The Event Hubs management answers in their documented form: an Atom entry (RFC 4287)
//! holding a `RevokedPublisherDescription` for a revoked publisher, and an Atom feed of them
//! for the revoked-publishers list (learn.microsoft.com/rest/api/eventhub/revoke-publisher,
//! …/get-revoked-publishers). Written with quick-xml, which escapes every name.

use axum::http::{HeaderMap, header};
use chrono::{DateTime, Utc};
use hubgate_server::revocation::Revoked;
use hubgate_server::sas::encode_uri_component;
use quick_xml::Writer;
use quick_xml::events::BytesText;

/// `Content-Type` of an Atom entry, as the service sends it.
pub(crate) const ENTRY_CONTENT_TYPE: &str = "application/atom+xml;type=entry;charset=utf-8";
/// `Content-Type` of an Atom feed, as the service sends it.
pub(crate) const FEED_CONTENT_TYPE: &str = "application/atom+xml;type=feed;charset=utf-8";

const ATOM_NS: &str = "http://www.w3.org/2005/Atom";
const SERVICEBUS_NS: &str = "http://schemas.microsoft.com/netservices/2010/10/servicebus/connect";
const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Whether a management request gets Atom: unless `Accept` asks for JSON (and not Atom),
/// when `Accept` names Atom, the request body is Atom, or the query carries `api-version`
/// (what Event Hubs REST clients send). Otherwise the JSON answer.
pub(crate) fn wanted(headers: &HeaderMap, query: Option<&str>) -> bool {
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",")
        .to_ascii_lowercase();
    let accept_atom = accept.contains("application/atom+xml");
    if accept.contains("application/json") && !accept_atom {
        return false;
    }
    let body_atom = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("application/atom+xml"));
    let api_version = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .any(|(k, _)| k.eq_ignore_ascii_case("api-version"));
    accept_atom || body_atom || api_version
}

/// `https://{namespace}/{hub}/revokedpublishers[/{publisher}]`, segments encoded.
fn url(namespace: &str, hub: &str, publisher: Option<&str>) -> String {
    let mut url = format!(
        "https://{namespace}/{}/revokedpublishers",
        encode_uri_component(hub)
    );
    if let Some(p) = publisher {
        url.push('/');
        url.push_str(&encode_uri_component(p));
    }
    url
}

fn time(unix: i64) -> String {
    DateTime::<Utc>::from_timestamp(unix, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

type Out = Writer<Vec<u8>>;

/// Writes one `<entry>` (with the Atom namespace when it stands alone).
fn entry(w: &mut Out, namespace: &str, r: &Revoked, alone: bool) -> std::io::Result<()> {
    let href = url(namespace, &r.hub, Some(&r.publisher));
    let mut start = w.create_element("entry");
    if alone {
        start = start.with_attribute(("xmlns", ATOM_NS));
    }
    start.write_inner_content(|w| {
        w.create_element("id")
            .write_text_content(BytesText::new(&href))?;
        w.create_element("title")
            .with_attribute(("type", "text"))
            .write_text_content(BytesText::new(&r.publisher))?;
        w.create_element("updated")
            .write_text_content(BytesText::new(&time(r.revoked_at)))?;
        w.create_element("link")
            .with_attributes([("rel", "self"), ("href", href.as_str())])
            .write_empty()?;
        w.create_element("content")
            .with_attribute(("type", "application/xml"))
            .write_inner_content(|w| {
                w.create_element("RevokedPublisherDescription")
                    .with_attributes([("xmlns", SERVICEBUS_NS), ("xmlns:i", XSI_NS)])
                    .write_inner_content(|w| {
                        w.create_element("Name")
                            .write_text_content(BytesText::new(&r.publisher))?;
                        Ok(())
                    })?;
                Ok(())
            })?;
        Ok(())
    })?;
    Ok(())
}

fn finish(w: Out) -> String {
    // quick-xml writes UTF-8 from `&str` input only.
    String::from_utf8(w.into_inner()).unwrap_or_default()
}

/// The Atom entry describing revoked publisher `r`.
pub(crate) fn revoked_entry(namespace: &str, r: &Revoked) -> String {
    let mut w = Writer::new(Vec::new());
    // Writing into a Vec cannot fail.
    let _ = entry(&mut w, namespace, r, true);
    finish(w)
}

/// The Atom feed of `hub`'s revoked publishers.
pub(crate) fn revoked_feed(namespace: &str, hub: &str, list: &[Revoked]) -> String {
    let mut w = Writer::new(Vec::new());
    let href = url(namespace, hub, None);
    let updated = list
        .iter()
        .map(|r| r.revoked_at)
        .max()
        .unwrap_or_else(|| Utc::now().timestamp());
    let _ = w
        .create_element("feed")
        .with_attribute(("xmlns", ATOM_NS))
        .write_inner_content(|w| {
            w.create_element("id")
                .write_text_content(BytesText::new(&href))?;
            w.create_element("title")
                .with_attribute(("type", "text"))
                .write_text_content(BytesText::new("RevokedPublishers"))?;
            w.create_element("updated")
                .write_text_content(BytesText::new(&time(updated)))?;
            w.create_element("link")
                .with_attributes([("rel", "self"), ("href", href.as_str())])
                .write_empty()?;
            for r in list {
                entry(w, namespace, r, false)?;
            }
            Ok(())
        });
    finish(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn revoked(publisher: &str) -> Revoked {
        Revoked {
            hub: "hub".into(),
            publisher: publisher.into(),
            revoked_at: 1_700_000_000,
            revoked_by: "sas:manage".into(),
        }
    }

    #[test]
    fn atom_wanted_by_accept_body_or_api_version_ok() {
        let with = |pairs: &[(header::HeaderName, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.append(k, HeaderValue::from_static(v));
            }
            h
        };
        let atom_body = with(&[(
            header::CONTENT_TYPE,
            "application/atom+xml;type=entry;charset=utf-8",
        )]);
        assert!(wanted(&atom_body, None));
        assert!(wanted(
            &HeaderMap::new(),
            Some("timeout=60&api-version=2014-05")
        ));
        assert!(wanted(
            &with(&[(header::ACCEPT, "application/atom+xml")]),
            None
        ));
        assert!(!wanted(&HeaderMap::new(), None));
        assert!(!wanted(&HeaderMap::new(), Some("timeout=60")));
        // Asking for JSON wins over the other signals.
        let json = with(&[
            (header::ACCEPT, "application/json"),
            (header::CONTENT_TYPE, "application/atom+xml"),
        ]);
        assert!(!wanted(&json, Some("api-version=2014-05")));
        assert!(!wanted(&with(&[(header::ACCEPT, "*/*")]), None));
    }

    #[test]
    fn atom_entry_escapes_names_ok() {
        let xml = revoked_entry("ns.test", &revoked("a<b>&\"c'"));
        assert!(
            xml.starts_with(r#"<entry xmlns="http://www.w3.org/2005/Atom">"#),
            "{xml}"
        );
        assert!(
            xml.contains("<Name>a&lt;b&gt;&amp;&quot;c&apos;</Name>"),
            "{xml}"
        );
        assert!(
            xml.contains("<id>https://ns.test/hub/revokedpublishers/a%3Cb%3E%26%22c&apos;</id>"),
            "{xml}"
        );
        assert!(
            xml.contains("<updated>2023-11-14T22:13:20Z</updated>"),
            "{xml}"
        );
        // Well-formed: quick-xml reads it back to the end.
        let mut reader = quick_xml::Reader::from_str(&xml);
        loop {
            match reader.read_event() {
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(_) => {}
                Err(e) => panic!("{e}: {xml}"),
            }
        }
    }

    #[test]
    fn atom_feed_lists_every_entry_ok() {
        let xml = revoked_feed("ns.test", "hub", &[revoked("a"), revoked("b")]);
        assert!(
            xml.starts_with(r#"<feed xmlns="http://www.w3.org/2005/Atom">"#),
            "{xml}"
        );
        assert_eq!(xml.matches("<entry>").count(), 2, "{xml}");
        assert!(xml.contains("<Name>b</Name>"), "{xml}");
        let empty = revoked_feed("ns.test", "hub", &[]);
        assert!(!empty.contains("<entry"), "{empty}");
    }
}

//! Root-only abuse suite for the API (issue #13): what a client sends that
//! dockerd refuses must be refused here too, where it enters, with dockerd's
//! status and words. `cargo nextest run abuse_` selects the suite.

mod common;

use common::*;

/// A 400 whose message says `word`.
#[track_caller]
fn refused(d: &Daemon, method: &str, path: &str, body: &str, word: &str) {
    let (code, resp) = d.http_json(method, path, body);
    assert_eq!(code, 400, "{method} {path} {body}: {resp}");
    assert!(resp.contains(word), "{method} {path}: {resp}");
}

#[test]
fn abuse_api_versions_out_of_range_are_400() {
    let d = Daemon::start();
    refused(
        &d,
        "GET",
        "/v9.99/info",
        "",
        "client version 9.99 is too new. Maximum supported API version is 1.45",
    );
    refused(
        &d,
        "GET",
        "/v1.0/containers/json",
        "",
        "client version 1.0 is too old. Minimum supported API version is 1.24",
    );
    assert_eq!(d.http("GET", "/v1.45/_ping").0, 200);
}

#[test]
fn abuse_bad_references_are_refused_where_they_enter() {
    let mut d = Daemon::start();
    d.ok(&["pull", "-q", IMAGE]);
    let bad = "invalid reference format";
    refused(
        &d,
        "POST",
        "/images/localhost:5000/busybox/tag?repo=ok:../bad&tag=latest",
        "",
        bad,
    );
    refused(
        &d,
        "POST",
        "/images/localhost:5000/busybox/tag?repo=ok&tag=../bad",
        "",
        bad,
    );
    refused(
        &d,
        "POST",
        "/images/create?fromImage=ok:../bad&tag=latest",
        "",
        bad,
    );
    refused(
        &d,
        "POST",
        "/containers/create",
        r#"{"Image":"ok:../bad:latest"}"#,
        bad,
    );
    refused(&d, "GET", "/images/ok:..%2Fbad:latest/json", "", bad);
    refused(&d, "POST", "/build?t=ok:../bad:latest", "", bad);
    let id = d.ok(&["create", IMAGE, "true"]).trim().to_string();
    refused(
        &d,
        "POST",
        &format!("/commit?container={id}&repo=ok:../bad&tag=latest"),
        "{}",
        bad,
    );
    // Nothing of it was stored.
    let (code, list) = d.http("GET", "/images/json");
    assert_eq!(code, 200);
    assert!(!list.contains("bad"), "{list}");
    // A name that is merely unknown is still 404.
    assert_eq!(d.http("GET", "/images/no-such-image:1/json").0, 404);
    d.finish();
}

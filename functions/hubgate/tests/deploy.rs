//! What the deploy descriptions deploy matches what the workspace builds: every function
//! binary has its `aws_lambda_function` (infra/aws), the HTTP API's routes are the routers'
//! routes (`hubgate_server::routes::ROUTES`) with the function serving each, and the Azure
//! Function App's `function.json` routes (functions/azure) are the same routes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use hcl::{Block, Body, Expression, ObjectKey};
use hubgate_server::routes::{Function, ROUTES};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.tf` file of a Terraform module, parsed.
fn module(dir: &str) -> Vec<Body> {
    let mut bodies = Vec::new();
    for entry in std::fs::read_dir(repo().join(dir)).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "tf") {
            let text = std::fs::read_to_string(&path).unwrap();
            bodies.push(hcl::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())));
        }
    }
    assert!(!bodies.is_empty(), "no .tf files in {dir}");
    bodies
}

fn blocks<'a>(bodies: &'a [Body], kind: &'a str) -> impl Iterator<Item = &'a Block> + 'a {
    bodies
        .iter()
        .flat_map(Body::blocks)
        .filter(move |b| b.identifier() == kind)
}

/// The expression of `locals { name = … }`.
fn local<'a>(bodies: &'a [Body], name: &str) -> &'a Expression {
    blocks(bodies, "locals")
        .flat_map(|b| b.body().attributes())
        .find(|a| a.key() == name)
        .map(hcl::Attribute::expr)
        .unwrap_or_else(|| panic!("no local.{name}"))
}

/// `resource "<kind>" "<name>"`.
fn resource<'a>(bodies: &'a [Body], kind: &str, name: &str) -> &'a Block {
    blocks(bodies, "resource")
        .find(|b| {
            let labels: Vec<&str> = b.labels().iter().map(|l| l.as_str()).collect();
            labels == [kind, name]
        })
        .unwrap_or_else(|| panic!("no resource {kind}.{name}"))
}

fn attribute<'a>(block: &'a Block, name: &str) -> &'a Expression {
    block
        .body()
        .attributes()
        .find(|a| a.key() == name)
        .map(hcl::Attribute::expr)
        .unwrap_or_else(|| panic!("no attribute {name}"))
}

fn string(e: &Expression) -> String {
    match e {
        Expression::String(s) => s.clone(),
        other => panic!("not a plain string: {other:?}"),
    }
}

/// `toset([...])` or `[...]` of plain strings.
fn string_set(e: &Expression) -> BTreeSet<String> {
    match e {
        Expression::Array(items) => items.iter().map(string).collect(),
        Expression::FuncCall(call) if call.name.name.as_str() == "toset" => {
            string_set(&call.args[0])
        }
        other => panic!("not a set of strings: {other:?}"),
    }
}

/// `{ "key" = "value", … }` of plain strings.
fn string_map(e: &Expression) -> BTreeMap<String, String> {
    let Expression::Object(object) = e else {
        panic!("not an object: {e:?}");
    };
    object
        .iter()
        .map(|(k, v)| {
            let key = match k {
                ObjectKey::Expression(k) => string(k),
                ObjectKey::Identifier(i) => i.to_string(),
                other => panic!("unexpected key {other:?}"),
            };
            (key, string(v))
        })
        .collect()
}

/// `METHOD /path` → function, for every route a public API serves: all but the authorizer's
/// own endpoint (for other gateways; on AWS the function is the API's authorizer) and the
/// event streams (an HTTP API buffers a Lambda answer and the Functions host a custom
/// handler's: on AWS they have a function URL of their own, `aws_streams_function_url_ok`).
fn public_routes() -> BTreeMap<String, String> {
    ROUTES
        .iter()
        .filter(|r| r.function() != Function::Authorizer && !r.is_stream())
        .map(|r| {
            (
                format!("{} {}", r.method, r.path),
                r.function().name().to_owned(),
            )
        })
        .collect()
}

#[test]
fn aws_every_function_has_a_lambda_ok() {
    let tf = module("infra/aws");
    let functions = string_set(local(&tf, "functions"));
    let binaries: BTreeSet<String> = Function::ALL.iter().map(|f| f.name().into()).collect();
    assert_eq!(functions, binaries);
    for f in &functions {
        let manifest = std::fs::read_to_string(repo().join("functions").join(f).join("Cargo.toml"))
            .unwrap_or_else(|e| panic!("functions/{f}/Cargo.toml: {e}"));
        assert!(manifest.contains(&format!("name = \"{f}\"")), "{f}");
    }
    let lambda = resource(&tf, "aws_lambda_function", "fn");
    assert_eq!(
        hcl::format::to_string(attribute(lambda, "for_each")).unwrap(),
        "local.lambdas"
    );
    for (name, want) in [("runtime", "provided.al2023"), ("handler", "bootstrap")] {
        assert_eq!(string(attribute(lambda, name)), want, "{name}");
    }
}

#[test]
fn aws_streams_function_url_ok() {
    let tf = module("infra/aws");
    assert!(ROUTES.iter().any(hubgate_server::routes::Route::is_stream));
    let url = resource(&tf, "aws_lambda_function_url", "streams");
    assert_eq!(string(attribute(url, "invoke_mode")), "RESPONSE_STREAM");
    let streams = hcl::format::to_string(local(&tf, "streams_lambda")).unwrap();
    for want in [
        "code = \"kafka-proxy\"",
        "HUBGATE_LAMBDA_RESPONSE_STREAMING = \"true\"",
    ] {
        assert!(streams.contains(want), "{want} in {streams}");
    }
}

#[test]
fn aws_api_routes_are_the_router_routes_ok() {
    let tf = module("infra/aws");
    let mut want = public_routes();
    // The API description is the one route without the authorizer.
    let openapi_function = want.remove("GET /openapi.json").unwrap();
    assert_eq!(string_map(local(&tf, "routes")), want);
    assert_eq!(
        string(local(&tf, "openapi_route_function")),
        openapi_function
    );
    let openapi = resource(&tf, "aws_apigatewayv2_route", "openapi");
    assert_eq!(string(attribute(openapi, "route_key")), "GET /openapi.json");
    assert_eq!(string(attribute(openapi, "authorization_type")), "NONE");
    assert_eq!(string(local(&tf, "default_route_function")), "kafka-proxy");
    // Every route, the $default one too, goes through the REQUEST authorizer.
    for name in ["route", "default"] {
        let route = resource(&tf, "aws_apigatewayv2_route", name);
        assert_eq!(
            string(attribute(route, "authorization_type")),
            "CUSTOM",
            "{name}"
        );
    }
    let authorizer = resource(&tf, "aws_apigatewayv2_authorizer", "hubgate");
    assert_eq!(string(attribute(authorizer, "authorizer_type")), "REQUEST");
    assert_eq!(
        string(attribute(authorizer, "authorizer_payload_format_version")),
        "2.0"
    );
    let sources = string_set(attribute(authorizer, "identity_sources"));
    for s in [
        "$request.header.Authorization",
        "$context.httpMethod",
        "$context.path",
    ] {
        assert!(
            sources.contains(s),
            "identity source {s} missing: a cached answer would cross routes"
        );
    }
    // The authorizer matches rawPath against the route table: only the $default stage has
    // no stage-name prefix.
    let stage = resource(&tf, "aws_apigatewayv2_stage", "default");
    assert_eq!(string(attribute(stage, "name")), "$default");
}

#[test]
fn azure_function_routes_are_the_router_routes_ok() {
    let dir = repo().join("functions/azure");
    let host: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("host.json")).unwrap()).unwrap();
    assert_eq!(host["customHandler"]["enableForwardingHttpRequest"], true);
    assert_eq!(
        host["customHandler"]["description"]["defaultExecutablePath"],
        "hubgate"
    );
    let prefix = host["extensions"]["http"]["routePrefix"].as_str().unwrap();
    assert_eq!(
        prefix, "",
        "Event Hubs and HDInsight clients expect no /api prefix"
    );

    let mut routes = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path().join("function.json");
        if !path.exists() {
            continue;
        }
        let f: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let bindings = f["bindings"].as_array().unwrap();
        // Forwarding needs exactly one HTTP trigger and one HTTP output, nothing else.
        assert_eq!(bindings.len(), 2, "{}", path.display());
        let trigger = bindings
            .iter()
            .find(|b| b["type"] == "httpTrigger")
            .unwrap();
        assert!(
            bindings
                .iter()
                .any(|b| b["type"] == "http" && b["direction"] == "out")
        );
        // hubgate authenticates every request itself; a function key would break SAS clients.
        assert_eq!(trigger["authLevel"], "anonymous", "{}", path.display());
        let route = trigger["route"].as_str().unwrap();
        for m in trigger["methods"].as_array().unwrap() {
            let m = m.as_str().unwrap().to_ascii_uppercase();
            assert!(routes.insert(format!("{m} /{route}")), "{m} {route} twice");
        }
    }
    let want: BTreeSet<String> = public_routes().into_keys().collect();
    assert_eq!(routes, want);
}

//! End-to-end: OAuth2 bearer tokens from a real OpenID provider (npm oidc-provider, Entra-
//! shaped issuer), the security-group check, Microsoft Graph for tokens without groups (a
//! local stub; and a failing one, to prove fail-closed), attacks, and provider key rotation.

#![allow(clippy::unwrap_used)] // tests: a panic is a failed test

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use hubgate_tests::{Env, GraphStub, Oidc, latest_offsets, now, unique};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const OTHER_TID: &str = "0d8a1b2c-3e4f-4a5b-8c6d-7e8f9a0b1c2d";
const WRITERS: &str = "11111111-1111-1111-1111-111111111111";
/// The `outsider` client's group: Manage on `admin-hub` only.
const ADMINS: &str = "99999999-9999-9999-9999-999999999999";
const MEMBER_OID: &str = "aaaaaaaa-0000-0000-0000-000000000001";
const GRAPH_OID: &str = "aaaaaaaa-0000-0000-0000-000000000003";

/// `[oauth]` with the writers group granted Send and Listen on `hub`.
fn oauth_toml(oidc: &Oidc, graph: Option<&str>, hub: &str) -> String {
    let graph = graph.map_or_else(String::new, |base| {
        format!(
            "[oauth.graph]\nbase_url = '{base}'\ntoken_url = '{base}/token'\nclient_id = 'hubgate'\nclient_secret = 'not-a-real-secret'\n"
        )
    });
    // `POST /v1/authorize` on: the tests below compare its decisions with the functions'.
    format!(
        "[authorizer]\nhttp_endpoint = true\n[oauth]\nissuers = ['{}', 'https://sts.windows.net/{TID}/']\naudiences = ['api://hubgate']\n\
         jwks_unknown_kid_refresh_secs = 0\n\
         [[oauth.groups]]\ngroup = '{WRITERS}'\nrights = ['Send', 'Listen']\nhub = '{hub}'\n\
         [[oauth.groups]]\ngroup = '{ADMINS}'\nrights = ['Manage']\nhub = 'admin-hub'\n{graph}",
        oidc.issuer()
    )
}

async fn produce(env: &Env, topic: &str, auth: &str) -> reqwest::Response {
    env.http
        .post(env.gateway.url(&format!("/v1/producer/topics/{topic}")))
        .header("authorization", auth)
        .json(&json!({"records": [{"value": "from oauth"}]}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn oauth_member_produces_and_outsider_is_forbidden_ok() {
    let other = &unique("other");
    let hub = &unique("hub");
    let oidc = Oidc::start(TID, "kid-1");
    let env = Env::start(&oauth_toml(&oidc, None, hub)).await;
    env.create_topic(hub, 1).await;
    env.create_topic(other, 1).await;
    let member = format!("Bearer {}", oidc.token("member").await);
    let r = produce(&env, hub, &member).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = env
        .http
        .get(
            env.gateway
                .url(&format!("/v1/consumer/topics/{hub}/partitions/0/offsets/0")),
        )
        .header("authorization", &member)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "Listen through the same group");
    // Valid token, wrong hub: 403, not 401.
    let r = produce(&env, other, &member).await;
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["error_code"], 40302);
    // Valid token, not a member: 403.
    let outsider = format!("Bearer {}", oidc.token("outsider").await);
    let r = produce(&env, hub, &outsider).await;
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("www-authenticate").is_none());
    // The token issuer takes bearer tokens too: Manage from a group, on that group's hub only.
    let mint = |auth: String, hub: &str| {
        env.http
            .post(env.gateway.url("/v1/tokens"))
            .header("authorization", auth)
            .json(&json!({"hub": hub, "rights": ["Listen"], "ttl_secs": 60}))
            .send()
    };
    assert_eq!(
        mint(member.clone(), hub).await.unwrap().status(),
        403,
        "Send/Listen group, no Manage"
    );
    assert_eq!(
        mint(outsider.clone(), hub).await.unwrap().status(),
        403,
        "Manage elsewhere only"
    );
    let r = mint(outsider.clone(), "admin-hub").await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // Member tokens work on the Event Hubs paths too (one authorize() for both).
    let r = env
        .http
        .post(env.gateway.url(&format!("/{hub}/messages")))
        .header("authorization", &member)
        .body("eh")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

fn claims(oidc: &Oidc) -> Value {
    let t = now();
    json!({"iss": oidc.issuer(), "aud": "api://hubgate", "exp": t + 600, "nbf": t - 5, "iat": t,
           "tid": TID, "oid": MEMBER_OID, "idtyp": "app", "groups": [WRITERS]})
}

fn sign(oidc: &Oidc, kid: &str, claims: &Value) -> String {
    encode(&rs256(kid), claims, &oidc.key_pem())
}

/// An RS256 header with `kid`.
fn rs256(kid: &str) -> Header {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    header
}

/// `claims` under `header`, signed with the RSA key in `pem`.
fn encode(header: &Header, claims: &Value, pem: &[u8]) -> String {
    jsonwebtoken::encode(header, claims, &EncodingKey::from_rsa_pem(pem).unwrap()).unwrap()
}

/// Claims with one change.
fn claims_with(oidc: &Oidc, change: impl FnOnce(&mut Value)) -> Value {
    let mut c = claims(oidc);
    change(&mut c);
    c
}

/// Starts a provider and a gateway, lets `forge` make a token (given the provider and its
/// kid), and checks it is refused with 401 + `WWW-Authenticate`, with nothing written.
async fn assert_refused(forge: impl FnOnce(&Oidc, &str) -> String) {
    let hub = &unique("hub");
    hubgate_server::jwt::install_crypto_provider();
    let oidc = Oidc::start(TID, "kid-1");
    let env = Env::start(&oauth_toml(&oidc, None, hub)).await;
    env.create_topic(hub, 1).await;
    let token = forge(&oidc, &oidc.kid.clone());
    let r = produce(&env, hub, &format!("Bearer {token}")).await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap()),
        Some("Bearer error=\"invalid_token\"")
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error_code"], 40101, "{v}");
    println!("refused: {}", v["message"]);
    assert_eq!(
        latest_offsets(&env.broker.bootstrap(), hub).await,
        vec![0],
        "nothing written"
    );
}

/// The forging harness makes tokens hubgate accepts, so each refusal below is caused by its
/// one defect only.
#[tokio::test]
async fn oauth_forged_token_with_good_claims_ok() {
    let hub = &unique("hub");
    hubgate_server::jwt::install_crypto_provider();
    let oidc = Oidc::start(TID, "kid-1");
    let env = Env::start(&oauth_toml(&oidc, None, hub)).await;
    env.create_topic(hub, 1).await;
    let good = sign(&oidc, &oidc.kid, &claims(&oidc));
    assert_eq!(
        produce(&env, hub, &format!("Bearer {good}")).await.status(),
        200
    );
}

#[tokio::test]
async fn oauth_alg_none_fails() {
    assert_refused(|o, kid| {
        format!(
            "{}.{}.",
            B64URL.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string()),
            B64URL.encode(claims(o).to_string())
        )
    })
    .await;
}

#[tokio::test]
async fn oauth_hs256_signed_with_rsa_public_key_fails() {
    assert_refused(|o, kid| {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&h, &claims(o), &EncodingKey::from_secret(&o.public_pem())).unwrap()
    })
    .await;
}

#[tokio::test]
async fn oauth_unknown_kid_fails() {
    assert_refused(|o, _| sign(o, "no-such-kid", &claims(o))).await;
}

#[tokio::test]
async fn oauth_key_not_in_jwks_fails() {
    assert_refused(|o, kid| encode(&rs256(kid), &claims(o), &o.other_key_pem())).await;
}

#[tokio::test]
async fn oauth_expired_fails() {
    assert_refused(|o, kid| sign(o, kid, &claims_with(o, |c| c["exp"] = json!(now() - 3600))))
        .await;
}

#[tokio::test]
async fn oauth_nbf_in_future_fails() {
    assert_refused(|o, kid| sign(o, kid, &claims_with(o, |c| c["nbf"] = json!(now() + 3600))))
        .await;
}

#[tokio::test]
async fn oauth_missing_nbf_fails() {
    assert_refused(|o, kid| {
        sign(
            o,
            kid,
            &claims_with(o, |c| drop(c.as_object_mut().unwrap().remove("nbf"))),
        )
    })
    .await;
}

#[tokio::test]
async fn oauth_wrong_issuer_fails() {
    assert_refused(|o, kid| {
        sign(
            o,
            kid,
            &claims_with(o, |c| c["iss"] = json!("https://evil.example/")),
        )
    })
    .await;
}

#[tokio::test]
async fn oauth_other_tenant_issuer_same_key_fails() {
    assert_refused(|o, kid| {
        let iss = format!("https://login.microsoftonline.com/{OTHER_TID}/v2.0");
        sign(o, kid, &claims_with(o, |c| c["iss"] = json!(iss)))
    })
    .await;
}

#[tokio::test]
async fn oauth_tid_naming_another_issuer_segment_fails() {
    // "v2.0" is a path segment of the issuer, not its tenant.
    assert_refused(|o, kid| sign(o, kid, &claims_with(o, |c| c["tid"] = json!("v2.0")))).await;
}

#[tokio::test]
async fn oauth_critical_header_extension_fails() {
    assert_refused(|o, kid| {
        let mut h = rs256(kid);
        h.crit = Some(vec!["exp".to_owned()]);
        encode(&h, &claims(o), &o.key_pem())
    })
    .await;
}

#[tokio::test]
async fn oauth_tid_not_matching_issuer_fails() {
    assert_refused(|o, kid| sign(o, kid, &claims_with(o, |c| c["tid"] = json!(OTHER_TID)))).await;
}

#[tokio::test]
async fn oauth_wrong_audience_fails() {
    assert_refused(|o, kid| {
        sign(
            o,
            kid,
            &claims_with(o, |c| c["aud"] = json!("api://someone-else")),
        )
    })
    .await;
}

#[tokio::test]
async fn oauth_missing_audience_fails() {
    assert_refused(|o, kid| {
        sign(
            o,
            kid,
            &claims_with(o, |c| drop(c.as_object_mut().unwrap().remove("aud"))),
        )
    })
    .await;
}

#[tokio::test]
async fn oauth_oversized_token_fails() {
    assert_refused(|o, kid| {
        sign(
            o,
            kid,
            &claims_with(o, |c| c["padding"] = json!("x".repeat(17 * 1024))),
        )
    })
    .await;
}

#[tokio::test]
async fn oauth_garbage_token_fails() {
    assert_refused(|_, _| "not.a.jwt".to_owned()).await;
}

#[tokio::test]
async fn oauth_app_only_token_uses_graph_and_fails_closed_ok() {
    let hub = &unique("hub");
    let oidc = Oidc::start(TID, "kid-1");
    let graph = GraphStub::start(GRAPH_OID, &[WRITERS], false).await;
    let env = Env::start(&oauth_toml(&oidc, Some(&graph.base), hub)).await;
    env.create_topic(hub, 1).await;
    let token = format!("Bearer {}", oidc.token("graph").await);
    let r = produce(&env, hub, &token).await;
    assert_eq!(
        r.status(),
        200,
        "member per Graph: {}",
        r.text().await.unwrap()
    );

    // Another gateway (its own hub, on the same cluster) whose Graph fails.
    let hub2 = &unique("hub");
    let failing = GraphStub::start(GRAPH_OID, &[WRITERS], true).await;
    let env2 = Env::start(&oauth_toml(&oidc, Some(&failing.base), hub2)).await;
    env2.create_topic(hub2, 1).await;
    let r = produce(&env2, hub2, &token).await;
    assert_eq!(r.status(), 503, "Graph down: fail closed");
    assert_eq!(r.json::<Value>().await.unwrap()["error_code"], 50302);
    assert_eq!(
        latest_offsets(&env2.broker.bootstrap(), hub2).await,
        vec![0]
    );
}

#[tokio::test]
async fn oauth_provider_key_rotation_accepted_after_refresh_ok() {
    let hub = &unique("hub");
    let mut oidc = Oidc::start(TID, "kid-1");
    let env = Env::start(&oauth_toml(&oidc, None, hub)).await;
    env.create_topic(hub, 1).await;
    let first = format!("Bearer {}", oidc.token("member").await);
    assert_eq!(produce(&env, hub, &first).await.status(), 200);
    oidc.rotate("kid-2");
    let second = format!("Bearer {}", oidc.token("member").await);
    assert_eq!(
        produce(&env, hub, &second).await.status(),
        200,
        "new kid fetched on demand"
    );
}

async fn authorize(env: &Env, authorization: &str, method: &str, path: &str) -> Value {
    let r = env
        .http
        .post(env.gateway.url("/v1/authorize"))
        .json(&json!({"authorization": authorization, "method": method, "path": path}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn authorizer_decides_for_bearer_and_sas_with_revocation_ok() {
    let hub = &unique("hub");
    let oidc = Oidc::start(TID, "kid-1");
    let env = Env::start(&oauth_toml(&oidc, None, hub)).await;
    env.create_topic(hub, 1).await;
    let member = format!("Bearer {}", oidc.token("member").await);
    let d = authorize(&env, &member, "POST", &format!("/{hub}/messages")).await;
    assert_eq!(
        d,
        json!({"isAuthorized": true, "context": {"principalKind": "jwt", "principal": format!("jwt:{TID}/{MEMBER_OID}"),
                                                  "rights": "Send,Listen", "publisher": ""}})
    );
    let outsider = format!("Bearer {}", oidc.token("outsider").await);
    let d = authorize(&env, &outsider, "POST", &format!("/{hub}/messages")).await;
    assert_eq!(d["isAuthorized"], false);
    assert!(
        d["context"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("Forbidden"),
        "{d}"
    );

    let device = env.token("send", &format!("{hub}/publishers/dev-1"));
    let d = authorize(
        &env,
        &device,
        "POST",
        &format!("/{hub}/publishers/dev-1/messages"),
    )
    .await;
    assert_eq!(d["isAuthorized"], true, "{d}");
    assert_eq!(d["context"]["publisher"], "dev-1");
    let d = authorize(
        &env,
        &device,
        "POST",
        &format!("/{hub}/publishers/dev-2/messages"),
    )
    .await;
    assert_eq!(d["isAuthorized"], false, "another publisher's path");
    let r = env
        .http
        .put(env.gateway.url(&format!("/{hub}/revokedpublishers/dev-1")))
        .header("authorization", env.token("manage", hub))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let d = authorize(
        &env,
        &device,
        "POST",
        &format!("/{hub}/publishers/dev-1/messages"),
    )
    .await;
    assert_eq!(
        d,
        json!({"isAuthorized": false, "context": {"reason": "PublisherRevoked: publisher 'dev-1' is revoked", "status": "401"}})
    );
}

/// Issue 16 item 14: a valid bearer token outside every configured security group is a
/// refusal (403), not a credential problem (401), on every route, the topic list included.
#[tokio::test]
async fn oauth_token_in_no_group_forbidden_on_every_route_ok() {
    let hub = &unique("hub");
    let oidc = Oidc::start(TID, "kid-1");
    // Only the writers group is configured: the outsider's group grants nothing here.
    let toml = oauth_toml(&oidc, None, hub).replace(
        &format!("[[oauth.groups]]\ngroup = '{ADMINS}'\nrights = ['Manage']\nhub = 'admin-hub'\n"),
        "",
    );
    assert!(!toml.contains(ADMINS));
    let env = Env::start(&toml).await;
    env.create_topic(hub, 1).await;
    let outsider = format!("Bearer {}", oidc.token("outsider").await);
    for path in [
        "/v1/metadata/topics".to_owned(),
        "/v1/metadata/brokers".to_owned(),
        format!("/v1/metadata/topics/{hub}/partitions"),
        format!("/v1/consumer/topics/{hub}/partitions/0/offsets/0"),
    ] {
        let r = env
            .http
            .get(env.gateway.url(&path))
            .header("authorization", &outsider)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
        assert_eq!(
            r.json::<Value>().await.unwrap()["error_code"],
            40302,
            "{path}"
        );
    }
    let r = produce(&env, hub, &outsider).await;
    assert_eq!(r.status(), 403);
}

//! The management API in process: a broker and its HTTP listener on free
//! ports, called with reqwest. Routes, authentication, paging, kick.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use roost_admin::AdminServer;
use roost_admin::store::AdminFile;
use roost_broker::config::{Config, ListenerConfig};
use roost_broker::{Broker, BrokerHandle};
use roost_codec::{Packet, ProtocolVersion, PublishProperties, QoS, ReasonCode};
use roost_testkit::packets::unique_id;
use roost_testkit::{RawClient, packets};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(10);

struct Admin {
    mqtt: SocketAddr,
    base: String,
    handle: BrokerHandle,
    key: String,
    secret: String,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

impl Drop for Admin {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// A broker with `extra` config, its API on a free port, and one API key.
async fn start(extra: &str) -> Admin {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let admin_file = dir.path().join("admin.json");
    let mut file = AdminFile::default();
    let (key, secret) = file.add_api_key("test");
    file.set_user("admin", "admin password").unwrap();
    file.save(&admin_file).unwrap();
    let toml = format!(
        "[http]\nadmin_file = {:?}\nlogin_max_failures = 2\n{extra}",
        admin_file.display().to_string()
    );
    let mut config = Config::from_toml(&toml, "test").unwrap();
    config.listeners = vec![ListenerConfig::loopback(0)];
    let broker = Broker::builder().config(config).bind().await.unwrap();
    let mqtt = broker.local_addrs()[0];
    let handle = broker.handle();
    let server = AdminServer::bind(handle.clone(), Some("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let base = format!("http://{}", server.local_addr());
    tokio::spawn(server.run());
    tokio::spawn(broker.run());
    Admin {
        mqtt,
        base,
        handle,
        key,
        secret,
        http: reqwest::Client::builder().timeout(T).build().unwrap(),
        dir,
    }
}

impl Admin {
    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .basic_auth(&self.key, Some(&self.secret))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.req(reqwest::Method::GET, path).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self.req(method, path);
        if let Some(body) = body {
            r = r.json(&body);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn every_route_of_the_openapi_document_answers_401_without_or_with_wrong_credentials() {
    let admin = start("metrics_auth = true").await;
    let (status, doc) = admin.get("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 20, "{} paths", paths.len());
    let mut checked = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            // Operations open to anyone declare `security: [{}]` (login).
            let open = op["security"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
            });
            if open {
                continue;
            }
            let url = format!("{}{}", admin.base, path.replace(['{', '}'], ""));
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let attempts = [
                None,
                Some(format!("Basic {}", b64(&format!("{}:wrong", admin.key)))),
                Some(format!(
                    "Basic {}",
                    b64(&format!("rk_0000000000000000:{}", admin.secret))
                )),
                Some("Bearer not-a-token".to_string()),
            ];
            for auth in attempts {
                let mut request = admin.http.request(method.clone(), &url).json(&json!({}));
                if let Some(auth) = &auth {
                    request = request.header("authorization", auth);
                }
                let response = request.send().await.unwrap();
                assert_eq!(
                    response.status().as_u16(),
                    401,
                    "{method} {path} with {auth:?}"
                );
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["code"], "UNAUTHORIZED", "{method} {path}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 25, "only {checked} operations checked");
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test]
async fn the_served_openapi_document_is_the_one_checked_in_as_docs_openapi_json() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let generated = roost_admin::openapi::document();
    if std::env::var_os("ROOST_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "docs/openapi.json is not current: run `ROOST_UPDATE_OPENAPI=1 cargo test -p roost-admin --test api` \
         or `roost ctl openapi > docs/openapi.json`"
    );
    let admin = start("").await;
    let (_, served) = admin.get("/api/v1/openapi.json").await;
    assert_eq!(served, serde_json::from_str::<Value>(&generated).unwrap());
}

#[tokio::test]
async fn login_returns_a_token_that_authorizes_and_failed_logins_get_429() {
    let admin = start("").await;
    let login = |password: &str| {
        admin
            .http
            .post(format!("{}/api/v1/login", admin.base))
            .json(&json!({"username": "admin", "password": password}))
            .send()
    };
    let ok = login("admin password").await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["username"], "admin");
    assert_eq!(body["expires_in"], 3600);
    let token = body["token"].as_str().unwrap().to_string();
    let status = admin
        .http
        .get(format!("{}/api/v1/status", admin.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(status.status().as_u16(), 200);
    let status: Value = status.json().await.unwrap();
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    // login_max_failures = 2: two wrong passwords, then even the right one waits.
    for _ in 0..2 {
        let r = login("wrong").await.unwrap();
        assert_eq!(r.status().as_u16(), 401);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "BAD_CREDENTIALS");
    }
    let r = login("admin password").await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().get("retry-after").is_some());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "TOO_MANY_ATTEMPTS");
}

#[tokio::test]
async fn kicking_a_client_through_the_api_sends_disconnect_0x98() {
    let admin = start("").await;
    let id = unique_id("kick");
    let (mut client, _) = RawClient::connect_v5(admin.mqtt, &id).await.unwrap();
    let (status, _) = admin
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/clients/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let disconnect = client
        .expect_closed(T)
        .await
        .unwrap()
        .expect("a DISCONNECT before the close");
    assert_eq!(disconnect.reason_code, ReasonCode::ADMINISTRATIVE_ACTION);
    let (status, body) = admin
        .send(reqwest::Method::DELETE, "/api/v1/clients/nobody-here", None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "CLIENT_NOT_FOUND");
}

#[tokio::test]
async fn clients_subscriptions_and_topics_show_a_connected_subscriber() {
    let admin = start("").await;
    let id = unique_id("lister");
    let (mut client, _) = RawClient::connect_v5(admin.mqtt, &id).await.unwrap();
    client
        .send(packets::subscribe(1, "sensors/+/temp", QoS::AtLeastOnce))
        .await
        .unwrap();
    assert!(matches!(client.recv(T).await.unwrap(), Packet::SubAck(_)));

    let (status, list) = admin.get(&format!("/api/v1/clients?like={id}")).await;
    assert_eq!(status, 200);
    assert_eq!(list["meta"]["count"], 1);
    let row = &list["data"][0];
    assert_eq!(row["client_id"], id.as_str());
    assert_eq!(row["connected"], true);
    assert_eq!(row["protocol"], "5.0");
    assert_eq!(row["subscriptions"], 1);

    let (status, one) = admin.get(&format!("/api/v1/clients/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(one["client_id"], id.as_str());
    let (_, subs) = admin
        .get(&format!("/api/v1/clients/{id}/subscriptions"))
        .await;
    assert_eq!(subs[0]["filter"], "sensors/+/temp");
    assert_eq!(subs[0]["qos"], 1);
    let (_, all) = admin
        .get(&format!("/api/v1/subscriptions?client_id={id}"))
        .await;
    assert_eq!(all["meta"]["count"], 1);
    let (_, topics) = admin.get("/api/v1/topics").await;
    let route = topics["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["filter"] == "sensors/+/temp")
        .unwrap();
    assert_eq!(route["subscribers"], 1);
    let (_, sessions) = admin.get("/api/v1/sessions?limit=1000").await;
    assert!(
        sessions["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["client_id"] == id.as_str())
    );
    let (status, missing) = admin.get("/api/v1/clients/not-there").await;
    assert_eq!(status, 404);
    assert_eq!(missing["code"], "CLIENT_NOT_FOUND");
    let (status, bad) = admin.get("/api/v1/clients?limit=5000").await;
    assert_eq!(status, 400);
    assert_eq!(bad["code"], "BAD_LIMIT");
}

#[tokio::test]
async fn retained_browsing_pages_through_100k_messages() {
    let admin = start("").await;
    const N: usize = 100_000;
    for i in 0..N {
        admin
            .handle
            .retained_set(
                &format!("bulk/{:03}/{i}", i % 997),
                Bytes::from_static(b"v"),
                QoS::AtMostOnce,
                PublishProperties::default(),
            )
            .unwrap();
    }
    admin
        .handle
        .retained_set(
            "other/topic",
            Bytes::from_static(b"x"),
            QoS::AtMostOnce,
            PublishProperties::default(),
        )
        .unwrap();
    // By cursor (`after`): every message exactly once, in order.
    let mut seen = std::collections::HashSet::new();
    let mut last: Option<String> = None;
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = "/api/v1/retained?filter=bulk%2F%23&limit=1000".to_string();
        if let Some(a) = &after {
            path.push_str(&format!("&after={}", urlencode(a)));
        }
        let (status, page) = admin.get(&path).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        for m in page["data"].as_array().unwrap() {
            let topic = m["topic"].as_str().unwrap().to_string();
            assert!(topic.starts_with("bulk/"));
            assert!(seen.insert(topic.clone()), "{topic} twice");
            last = Some(topic);
        }
        if page["meta"]["hasnext"] != true {
            assert!(page["meta"]["next"].is_null());
            break;
        }
        after = Some(page["meta"]["next"].as_str().unwrap().to_string());
        assert_eq!(after, last);
    }
    assert_eq!(seen.len(), N);
    assert_eq!(pages, N / 1000);
    // By page number: the same count, the last page says so.
    let mut total = 0;
    for page in 1..=100 {
        let (_, body) = admin
            .get(&format!(
                "/api/v1/retained?filter=bulk%2F%23&limit=1000&page={page}"
            ))
            .await;
        let n = body["data"].as_array().unwrap().len();
        total += n;
        assert_eq!(n, 1000, "page {page}");
        assert_eq!(body["meta"]["hasnext"], page < 100, "page {page}");
    }
    assert_eq!(total, N);
    // Get and delete one.
    let (status, one) = admin.get("/api/v1/retained/other%2Ftopic").await;
    assert_eq!(status, 200);
    assert_eq!(one["payload"], "x");
    assert_eq!(one["encoding"], "plain");
    let (status, _) = admin
        .send(
            reqwest::Method::DELETE,
            "/api/v1/retained/other/topic",
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, gone) = admin.get("/api/v1/retained/other/topic").await;
    assert_eq!(status, 404);
    assert_eq!(gone["code"], "RETAINED_NOT_FOUND");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn publish_through_the_api_reaches_a_subscriber_and_bad_input_gets_400() {
    let admin = start("").await;
    let id = unique_id("sub");
    let (mut client, _) = RawClient::connect_v5(admin.mqtt, &id).await.unwrap();
    client
        .send(packets::subscribe(1, "api/out", QoS::AtMostOnce))
        .await
        .unwrap();
    assert!(matches!(client.recv(T).await.unwrap(), Packet::SubAck(_)));
    let (status, body) = admin
        .send(
            reqwest::Method::POST,
            "/api/v1/publish",
            Some(json!({"topic": "api/out", "payload": "aGk=", "encoding": "base64"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["matched"], 1);
    let publish = client.recv_publish(T).await.unwrap();
    assert_eq!(&publish.payload[..], b"hi");
    let (status, body) = admin
        .send(
            reqwest::Method::POST,
            "/api/v1/publish",
            Some(json!({"topic": "a/#", "payload": "x"})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "BAD_TOPIC");
    let (status, body) = admin
        .send(
            reqwest::Method::POST,
            "/api/v1/publish",
            Some(json!({"nope": 1})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "BAD_REQUEST");
}

#[tokio::test]
async fn bans_through_the_api_close_the_client_and_refuse_it() {
    let admin = start("[auth.banned]\n").await;
    let id = unique_id("banme");
    let (mut client, _) = RawClient::connect_v5(admin.mqtt, &id).await.unwrap();
    let (status, body) = admin
        .send(
            reqwest::Method::POST,
            "/api/v1/banned",
            Some(json!({"kind": "clientid", "value": id})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["disconnected"], 1);
    let d = client.expect_closed(T).await.unwrap().unwrap();
    assert_eq!(d.reason_code, ReasonCode::ADMINISTRATIVE_ACTION);
    let (_, list) = admin.get("/api/v1/banned").await;
    assert_eq!(list[0]["kind"], "clientid");
    assert_eq!(list[0]["value"], id.as_str());
    let mut again = RawClient::connect(admin.mqtt, ProtocolVersion::V5)
        .await
        .unwrap();
    again
        .send(packets::connect(ProtocolVersion::V5, &id))
        .await
        .unwrap();
    match again.recv(T).await.unwrap() {
        Packet::ConnAck(ack) => assert_eq!(ack.reason_code, ReasonCode::BANNED),
        other => panic!("{other:?}"),
    }
    let (status, _) = admin
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/banned/clientid/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = admin
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/banned/clientid/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn password_file_users_are_added_changed_and_removed_and_apply_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let passwords = dir.path().join("passwords");
    std::fs::write(&passwords, "").unwrap();
    let admin = start(&format!(
        "[auth.password_file]\npath = {:?}\n",
        passwords.display().to_string()
    ))
    .await;
    let (status, body) = admin
        .send(
            reqwest::Method::POST,
            "/api/v1/users",
            Some(json!({"username": "dev", "password": "first"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = admin
        .send(
            reqwest::Method::POST,
            "/api/v1/users",
            Some(json!({"username": "dev", "password": "again"})),
        )
        .await;
    assert_eq!(status, 409);
    let (_, users) = admin.get("/api/v1/users").await;
    assert_eq!(users, json!([{"username": "dev"}]));
    let login = |password: &'static str| {
        let mqtt = admin.mqtt;
        async move {
            let mut connect = packets::connect(ProtocolVersion::V5, &unique_id("dev"));
            connect.username = Some("dev".into());
            connect.password = Some(Bytes::from_static(password.as_bytes()));
            let mut c = RawClient::connect(mqtt, ProtocolVersion::V5).await.unwrap();
            c.send(connect).await.unwrap();
            match c.recv(T).await.unwrap() {
                Packet::ConnAck(ack) => ack.reason_code,
                other => panic!("{other:?}"),
            }
        }
    };
    assert_eq!(login("first").await, ReasonCode::SUCCESS);
    let (status, _) = admin
        .send(
            reqwest::Method::PUT,
            "/api/v1/users/dev",
            Some(json!({"password": "second"})),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(login("first").await, ReasonCode::BAD_USER_NAME_OR_PASSWORD);
    assert_eq!(login("second").await, ReasonCode::SUCCESS);
    let (status, _) = admin
        .send(reqwest::Method::DELETE, "/api/v1/users/dev", None)
        .await;
    assert_eq!(status, 204);
    let (status, body) = admin
        .send(reqwest::Method::DELETE, "/api/v1/users/dev", None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "USER_NOT_FOUND");
    let plain = start("").await;
    let (status, body) = plain.get("/api/v1/users").await;
    assert_eq!(status, 409);
    assert_eq!(body["code"], "NO_PASSWORD_FILE");
    let _ = &admin.dir;
}

#[tokio::test]
async fn status_stats_nodes_listeners_and_metrics_answer() {
    let admin = start("").await;
    let (status, stats) = admin.get("/api/v1/stats").await;
    assert_eq!(status, 200);
    assert!(stats["timestamp_ms"].as_u64().unwrap() > 0);
    assert!(stats.get("connections_current").is_some());
    assert!(stats.get("bytes_received").is_some());
    let (_, nodes) = admin.get("/api/v1/nodes").await;
    assert_eq!(nodes[0]["status"], "running");
    let (_, listeners) = admin.get("/api/v1/listeners").await;
    assert_eq!(listeners[0]["kind"], "tcp");
    assert_eq!(listeners[0]["address"], admin.mqtt.to_string());
    let (status, reload) = admin
        .send(reqwest::Method::POST, "/api/v1/reload", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(reload["errors"], json!([]));
    // /metrics is open by default (metrics_auth = false).
    let metrics = admin
        .http
        .get(format!("{}/metrics", admin.base))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    let text = metrics.text().await.unwrap();
    assert!(text.contains("# TYPE roost_connections gauge"), "{text}");
    assert!(
        text.contains("roost_messages_dropped_total{reason=\"queue\"}"),
        "{text}"
    );
    for family in [
        "roost_messages_received_total{qos=\"2\"} 0".to_string(),
        format!(
            "roost_listener_connections{{listener=\"mqtt://{}\",kind=\"tcp\"}} 0",
            admin.mqtt
        ),
        "# TYPE roost_store_write_duration_seconds histogram".to_string(),
        "roost_hook_duration_seconds_bucket{le=\"+Inf\"} 0".to_string(),
        "roost_authentication_duration_seconds_count 0".to_string(),
    ] {
        assert!(text.contains(&family), "no {family} in\n{text}");
    }
    let (status, body) = admin.get("/api/v1/nope").await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "NOT_FOUND");
}

#[tokio::test]
async fn https_serves_the_api_with_the_configured_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = certs.path().join("http.crt");
    let key = certs.path().join("http.key");
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let admin = start(&format!(
        "[http.tls]\ncert_file = {:?}\nkey_file = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    ))
    .await;
    let port = admin.base.rsplit(':').next().unwrap().to_string();
    let client = reqwest::Client::builder()
        .tls_certs_only(vec![
            reqwest::Certificate::from_pem(made.cert.pem().as_bytes()).unwrap(),
        ])
        .resolve("localhost", format!("127.0.0.1:{port}").parse().unwrap())
        .timeout(T)
        .build()
        .unwrap();
    let url = format!("https://localhost:{port}/api/v1/status");
    let unauthorized = client.get(&url).send().await.unwrap();
    assert_eq!(unauthorized.status().as_u16(), 401);
    let ok = client
        .get(&url)
        .basic_auth(&admin.key, Some(&admin.secret))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    // Plain HTTP on the HTTPS port gets no answer.
    let plain = admin
        .http
        .get(format!("http://127.0.0.1:{port}/api/v1/status"))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
}

/// A 5.0 CONNECT keeping its session `expiry` seconds, resuming it unless `clean`.
fn persistent_connect(id: &str, clean: bool, expiry: u32) -> roost_codec::Connect {
    let mut connect = packets::connect(ProtocolVersion::V5, id);
    connect.clean_start = clean;
    connect.properties.session_expiry_interval = Some(expiry);
    connect
}

/// A PINGREQ answered: everything the broker queued for `client` before it
/// has been read (its deliveries are taken before the next packet is read).
async fn nothing_before_pingresp(client: &mut RawClient) {
    client.send(Packet::PingReq).await.unwrap();
    match client.recv(T).await.unwrap() {
        Packet::PingResp => {}
        other => panic!("expected only PINGRESP, got {other:?}"),
    }
}

#[tokio::test]
async fn subscribing_a_connected_client_through_the_api_routes_to_it_with_retained_and_no_suback() {
    let admin = start("").await;
    let id = unique_id("apisub");
    let (mut client, _) = RawClient::connect_v5(admin.mqtt, &id).await.unwrap();
    let path = format!("/api/v1/clients/{id}/subscriptions");
    let (status, body) = admin
        .send(
            reqwest::Method::POST,
            "/api/v1/publish",
            Some(json!({"topic": "apisub/kept", "payload": "old", "retain": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = admin
        .send(
            reqwest::Method::POST,
            &path,
            Some(json!({"filter": "apisub/#", "qos": 1})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["qos"], 1);
    assert_eq!(body["existed"], false);
    assert_eq!(body["retained"], 1);
    // Retain Handling 0: the retained message first, and no SUBACK (the
    // client asked for nothing).
    let retained = client.recv_publish(T).await.unwrap();
    assert_eq!(retained.topic, "apisub/kept");
    assert!(retained.retain);

    let (_, subs) = admin.get(&path).await;
    assert_eq!(subs[0]["filter"], "apisub/#");
    assert_eq!(subs[0]["qos"], 1);
    let (_, one) = admin.get(&format!("/api/v1/clients/{id}")).await;
    assert_eq!(one["subscriptions"], 1);

    admin.handle.publish(
        "apisub/live",
        Bytes::from_static(b"new"),
        QoS::AtLeastOnce,
        false,
    );
    let live = client.recv_publish(T).await.unwrap();
    assert_eq!(live.topic, "apisub/live");
    assert_eq!(live.qos, QoS::AtLeastOnce);
    client
        .send(packets::puback(live.packet_id.unwrap().get()))
        .await
        .unwrap();

    // Retain Handling 1 on a filter it holds: replaced, no retained again.
    let (status, body) = admin
        .send(
            reqwest::Method::POST,
            &path,
            Some(json!({"filter": "apisub/#", "qos": 0, "retain_handling": 1})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["existed"], true);
    assert_eq!(body["retained"], 0);
    nothing_before_pingresp(&mut client).await;

    let filter = urlencode("apisub/#");
    let (status, _) = admin
        .send(
            reqwest::Method::DELETE,
            &format!("{path}?filter={filter}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        admin.handle.publish(
            "apisub/live",
            Bytes::from_static(b"gone"),
            QoS::AtMostOnce,
            false
        ),
        0
    );
    nothing_before_pingresp(&mut client).await;
    let (_, subs) = admin.get(&path).await;
    assert_eq!(subs, json!([]));
    let (status, body) = admin
        .send(
            reqwest::Method::DELETE,
            &format!("{path}?filter={filter}"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "SUBSCRIPTION_NOT_FOUND");
}

#[tokio::test]
async fn subscribing_a_parked_session_through_the_api_queues_for_it_until_it_resumes() {
    let admin = start("").await;
    let id = unique_id("apipark");
    let (client, _) = RawClient::connect_with(admin.mqtt, persistent_connect(&id, true, 300))
        .await
        .unwrap();
    client.drop_connection().await.unwrap();
    // Parked once the broker saw the close.
    let parked = async {
        loop {
            let (_, one) = admin.get(&format!("/api/v1/clients/{id}")).await;
            if one["connected"] == false {
                return one;
            }
            tokio::task::yield_now().await;
        }
    };
    let one = tokio::time::timeout(T, parked).await.unwrap();
    assert_eq!(one["session_expiry_interval_s"], 300);

    let path = format!("/api/v1/clients/{id}/subscriptions");
    let (status, body) = admin
        .send(
            reqwest::Method::POST,
            &path,
            Some(json!({"filter": "park/+", "qos": 1})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        admin.handle.publish(
            "park/x",
            Bytes::from_static(b"kept"),
            QoS::AtLeastOnce,
            false
        ),
        1
    );
    let (_, one) = admin.get(&format!("/api/v1/clients/{id}")).await;
    assert_eq!(one["queued"], 1);

    let (mut client, connack) =
        RawClient::connect_with(admin.mqtt, persistent_connect(&id, false, 300))
            .await
            .unwrap();
    assert!(connack.session_present);
    let publish = client.recv_publish(T).await.unwrap();
    assert_eq!(publish.topic, "park/x");
    assert_eq!(&publish.payload[..], b"kept");
    // The resumed session holds the subscription: removing it works on the
    // live connection too.
    let (status, _) = admin
        .send(
            reqwest::Method::DELETE,
            &format!("{path}?filter=park%2F%2B"),
            None,
        )
        .await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn subscribing_through_the_api_refuses_unknown_clients_and_invalid_filters() {
    let admin = start("").await;
    let id = unique_id("apibad");
    let (_client, _) = RawClient::connect_v5(admin.mqtt, &id).await.unwrap();
    let path = format!("/api/v1/clients/{id}/subscriptions");
    for (body, code) in [
        (json!({"filter": "a/#/b"}), "SUBSCRIPTION_REFUSED"),
        (json!({"filter": "a", "qos": 3}), "BAD_QOS"),
        (
            json!({"filter": "a", "retain_handling": 3}),
            "BAD_RETAIN_HANDLING",
        ),
        (json!({"nope": 1}), "BAD_REQUEST"),
    ] {
        let (status, answer) = admin
            .send(reqwest::Method::POST, &path, Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(answer["code"], code, "{body}");
    }
    let (status, answer) = admin
        .send(
            reqwest::Method::POST,
            "/api/v1/clients/nobody-here/subscriptions",
            Some(json!({"filter": "a"})),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(answer["code"], "CLIENT_NOT_FOUND");
    let (status, _) = admin
        .send(
            reqwest::Method::DELETE,
            "/api/v1/clients/nobody-here/subscriptions?filter=a",
            None,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_clients_detail_shows_its_connection_and_live_session_counts() {
    let admin = start("").await;
    let id = unique_id("detail");
    let mut connect = persistent_connect(&id, true, 120);
    connect.keep_alive = 45;
    let (mut client, _) = RawClient::connect_with(admin.mqtt, connect).await.unwrap();
    client
        .send(packets::subscribe(1, "detail/t", QoS::AtLeastOnce))
        .await
        .unwrap();
    assert!(matches!(client.recv(T).await.unwrap(), Packet::SubAck(_)));
    // One QoS 1 message sent and not acknowledged: inflight 1.
    admin.handle.publish(
        "detail/t",
        Bytes::from_static(b"x"),
        QoS::AtLeastOnce,
        false,
    );
    client.recv_publish(T).await.unwrap();

    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (status, one) = admin.get(&format!("/api/v1/clients/{id}")).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["keep_alive_s"], 45);
    assert_eq!(one["session_expiry_interval_s"], 120);
    assert_eq!(one["clean_start"], true);
    assert_eq!(one["inflight"], 1);
    assert_eq!(one["queued"], 0);
    assert_eq!(one["protocol"], "5.0");
    assert_eq!(one["listener"], "tcp");
    assert_eq!(one["peer"], client.local_addr().unwrap().to_string());
    let at = one["connected_at"].as_u64().unwrap();
    assert!(
        at <= before && at + 60 >= before,
        "connected_at {at}, now {before}"
    );
}

#[tokio::test]
async fn the_http_listener_closes_connections_over_max_connections() {
    let admin = start("max_connections = 2").await;
    let addr: SocketAddr = admin.base.trim_start_matches("http://").parse().unwrap();
    let first = tokio::net::TcpStream::connect(addr).await.unwrap();
    let second = tokio::net::TcpStream::connect(addr).await.unwrap();
    // Both are served: a request on each gets an answer.
    let mut held = Vec::new();
    for mut stream in [first, second] {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut head = [0u8; 12];
        tokio::time::timeout(T, stream.read_exact(&mut head))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
        held.push(stream);
    }
    // The third is closed at once, without an answer.
    let mut third = tokio::net::TcpStream::connect(addr).await.unwrap();
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let _ = third
            .write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
            .await;
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(T, third.read(&mut buf)).await.unwrap();
        assert!(matches!(read, Ok(0) | Err(_)), "over the cap: {read:?}");
    }
    // One closes: its permit comes back once the server saw it go.
    drop(held.pop());
    let served = async {
        loop {
            if let Ok(r) = admin
                .http
                .get(format!("{}/metrics", admin.base))
                .send()
                .await
                && r.status() == 200
            {
                return;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(T, served).await.unwrap();
}

#[tokio::test]
async fn the_authentication_histogram_counts_each_connect_through_the_chain() {
    // The ban list is an authenticator: every CONNECT goes through the chain.
    let admin = start("[auth.banned]\n").await;
    let scrape = || async {
        admin
            .http
            .get(format!("{}/metrics", admin.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let count = |text: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix("roost_authentication_duration_seconds_count "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no authentication count in\n{text}"))
    };
    let before = count(&scrape().await);
    for _ in 0..3 {
        let (client, _) = RawClient::connect_v5(admin.mqtt, &unique_id("timed"))
            .await
            .unwrap();
        drop(client);
    }
    let text = scrape().await;
    assert_eq!(count(&text), before + 3, "{text}");
    assert!(
        text.contains(&format!(
            "roost_authentication_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            before + 3
        )),
        "{text}"
    );
}

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
            let url = format!("{}{}", admin.base, path.replace('{', "").replace('}', ""));
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
    let (status, body) = admin.get("/api/v1/nope").await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "NOT_FOUND");
}

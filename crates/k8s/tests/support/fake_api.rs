//! A small in-memory Kubernetes API server speaking real HTTP/JSON on 127.0.0.1, with just the
//! endpoints the driver uses. It plays the controllers too: Deployments become ready (unless
//! told otherwise) on the first schedulable node, and Jobs complete with one pod per other
//! schedulable node (the placement the load Job's anti-affinity asks for) whose logs hold a
//! recorded summary.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// Behaviour switches and state of the fake cluster.
#[derive(Debug, Default)]
pub struct State {
    /// collection path → name → object.
    pub objects: BTreeMap<String, BTreeMap<String, Value>>,
    /// Deployments (by name) that never become ready.
    pub never_ready: BTreeSet<String>,
    /// Log text served for every load pod; `{pod}` is replaced by the pod name.
    pub load_log: String,
    /// Log text for the load pods whose name starts with a key, instead of `load_log`.
    pub load_logs: BTreeMap<String, String>,
    /// Every request as `METHOD path?query`.
    pub requests: Vec<String>,
    counter: u64,
}

/// A running fake API server; stops when dropped.
pub struct FakeApi {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeApi {
    pub async fn start(load_log: &str) -> FakeApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            load_log: load_log.to_owned(),
            ..Default::default()
        }));
        {
            let mut s = state.lock().unwrap();
            let nodes = s.objects.entry("/api/v1/nodes".to_owned()).or_default();
            for (name, tainted) in [
                ("control-plane", true),
                ("node-a", false),
                ("node-b", false),
                ("node-c", false),
            ] {
                nodes.insert(name.into(), node(name, tainted));
            }
        }
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let st = st.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(st.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        FakeApi { addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn config(&self) -> kube::Config {
        kube::Config::new(self.url().parse().unwrap())
    }

    /// Names of stored objects in a collection path.
    pub fn names(&self, collection: &str) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.objects
            .get(collection)
            .map(|c| c.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Every stored object except nodes.
    pub fn object_count(&self) -> usize {
        let s = self.state.lock().unwrap();
        s.objects
            .iter()
            .filter(|(k, _)| k.as_str() != "/api/v1/nodes")
            .map(|(_, v)| v.len())
            .sum()
    }

    pub fn get(&self, collection: &str, name: &str) -> Option<Value> {
        let s = self.state.lock().unwrap();
        s.objects.get(collection).and_then(|c| c.get(name)).cloned()
    }

    /// Replaces the cluster's nodes: (name, tainted `NoSchedule`).
    pub fn set_nodes(&self, nodes: &[(&str, bool)]) {
        let mut s = self.state.lock().unwrap();
        let all = s.objects.entry("/api/v1/nodes".to_owned()).or_default();
        all.clear();
        for (name, tainted) in nodes {
            all.insert((*name).to_owned(), node(name, *tainted));
        }
    }

    pub fn insert(&self, collection: &str, name: &str, obj: Value) {
        let mut s = self.state.lock().unwrap();
        s.objects
            .entry(collection.to_owned())
            .or_default()
            .insert(name.to_owned(), obj);
    }
}

fn node(name: &str, tainted: bool) -> Value {
    let mut spec = json!({});
    if tainted {
        spec = json!({"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]});
    }
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": spec,
        "status": {
            "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "nodeInfo": {
                "architecture": "amd64", "bootID": "b", "containerRuntimeVersion": "containerd://1.7.24",
                "kernelVersion": "6.1.0-fake", "kubeProxyVersion": "v1.33.0-fake",
                "kubeletVersion": "v1.33.0-fake", "machineID": "m", "operatingSystem": "linux",
                "osImage": "Debian GNU/Linux 12 (bookworm)", "systemUUID": "u"}}})
}

/// Schedulable nodes (no `NoSchedule` taint), sorted by name.
fn schedulable(s: &State) -> Vec<String> {
    s.objects
        .get("/api/v1/nodes")
        .map(|nodes| {
            nodes
                .iter()
                .filter(|(_, n)| n["spec"]["taints"].as_array().is_none_or(|t| t.is_empty()))
                .map(|(name, _)| name.clone())
                .collect()
        })
        .unwrap_or_default()
}

type Resp = Response<Full<Bytes>>;

fn respond(code: StatusCode, body: &Value) -> Resp {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(body).unwrap())))
        .unwrap()
}

fn status(code: StatusCode, reason: &str, message: String) -> Resp {
    respond(
        code,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "code": code.as_u16()}),
    )
}

/// Where a request points.
struct Target {
    collection: String,
    namespace: Option<String>,
    resource: String,
    name: Option<String>,
    sub: Option<String>,
}

fn parse_path(path: &str) -> Option<Target> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (prefix, rest) = match *segs.first()? {
        "api" => (format!("/api/{}", segs.get(1)?), &segs[2..]),
        "apis" => (
            format!("/apis/{}/{}", segs.get(1)?, segs.get(2)?),
            &segs[3..],
        ),
        _ => return None,
    };
    let owned = |s: &&str| (*s).to_owned();
    match rest {
        ["namespaces"] => Some(Target {
            collection: format!("{prefix}/namespaces"),
            namespace: None,
            resource: "namespaces".into(),
            name: None,
            sub: None,
        }),
        ["namespaces", ns] => Some(Target {
            collection: format!("{prefix}/namespaces"),
            namespace: None,
            resource: "namespaces".into(),
            name: Some(owned(ns)),
            sub: None,
        }),
        ["namespaces", ns, res, more @ ..] => Some(Target {
            collection: format!("{prefix}/namespaces/{ns}/{res}"),
            namespace: Some(owned(ns)),
            resource: owned(res),
            name: more.first().map(owned),
            sub: more.get(1).map(owned),
        }),
        [res] => Some(Target {
            collection: format!("{prefix}/{res}"),
            namespace: None,
            resource: owned(res),
            name: None,
            sub: None,
        }),
        [res, name] => Some(Target {
            collection: format!("{prefix}/{res}"),
            namespace: None,
            resource: owned(res),
            name: Some(owned(name)),
            sub: None,
        }),
        _ => None,
    }
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn matches_labels(obj: &Value, selector: &Option<String>) -> bool {
    let Some(sel) = selector else { return true };
    sel.split(',').filter(|s| !s.is_empty()).all(|term| {
        let (k, v) = term.split_once('=').unwrap_or((term, ""));
        obj["metadata"]["labels"][k].as_str() == Some(v)
    })
}

fn matches_fields(obj: &Value, selector: &Option<String>) -> bool {
    let Some(sel) = selector else { return true };
    sel.split(',')
        .filter(|s| !s.is_empty())
        .all(|term| match term.split_once('=') {
            Some(("involvedObject.name", v)) => obj["involvedObject"]["name"].as_str() == Some(v),
            Some(("metadata.name", v)) => obj["metadata"]["name"].as_str() == Some(v),
            _ => false,
        })
}

async fn handle(state: Arc<Mutex<State>>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut s = state.lock().unwrap();
    s.requests.push(format!("{method} {path}?{query}"));

    if path == "/version" {
        return Ok(respond(
            StatusCode::OK,
            &json!({
            "major": "1", "minor": "33", "gitVersion": "v1.33.0-fake", "gitCommit": "0",
            "gitTreeState": "clean", "buildDate": "1970-01-01T00:00:00Z", "goVersion": "go0",
            "compiler": "gc", "platform": "linux/amd64"}),
        ));
    }
    let Some(t) = parse_path(&path) else {
        return Ok(status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("no route {path}"),
        ));
    };
    let labels = query_param(&query, "labelSelector");
    let fields = query_param(&query, "fieldSelector");

    Ok(match (method, &t.name, &t.sub) {
        (Method::GET, Some(name), Some(sub)) if sub == "log" && t.resource == "pods" => {
            match s.objects.get(&t.collection).and_then(|c| c.get(name)) {
                Some(_) => {
                    let log = s
                        .load_logs
                        .iter()
                        .find(|(prefix, _)| name.starts_with(prefix.as_str()))
                        .map_or(&s.load_log, |(_, log)| log);
                    Response::builder()
                        .status(StatusCode::OK)
                        .header("content-type", "text/plain")
                        .body(Full::new(Bytes::from(log.replace("{pod}", name))))
                        .unwrap()
                }
                None => status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("pods \"{name}\" not found"),
                ),
            }
        }
        (Method::GET, Some(name), None) => {
            match s.objects.get(&t.collection).and_then(|c| c.get(name)) {
                Some(o) => respond(StatusCode::OK, o),
                None => status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("{} \"{name}\" not found", t.resource),
                ),
            }
        }
        (Method::GET, None, None) => {
            let items: Vec<Value> = s
                .objects
                .get(&t.collection)
                .map(|c| {
                    c.values()
                        .filter(|o| matches_labels(o, &labels) && matches_fields(o, &fields))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            respond(
                StatusCode::OK,
                &json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items}),
            )
        }
        (Method::POST, None, None) => {
            let mut obj: Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => return Ok(status(StatusCode::BAD_REQUEST, "BadRequest", e.to_string())),
            };
            let Some(name) = obj["metadata"]["name"].as_str().map(str::to_owned) else {
                return Ok(status(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid",
                    "metadata.name required".into(),
                ));
            };
            if let Some(ns) = &t.namespace {
                let ns_exists = s
                    .objects
                    .get("/api/v1/namespaces")
                    .is_some_and(|c| c.contains_key(ns));
                if !ns_exists {
                    return Ok(status(
                        StatusCode::NOT_FOUND,
                        "NotFound",
                        format!("namespaces \"{ns}\" not found"),
                    ));
                }
                obj["metadata"]["namespace"] = json!(ns);
            }
            if s.objects
                .get(&t.collection)
                .is_some_and(|c| c.contains_key(&name))
            {
                return Ok(status(
                    StatusCode::CONFLICT,
                    "AlreadyExists",
                    format!("{} \"{name}\" already exists", t.resource),
                ));
            }
            s.counter += 1;
            obj["metadata"]["uid"] = json!(format!("uid-{}", s.counter));
            obj["metadata"]["resourceVersion"] = json!(s.counter.to_string());
            let ns = t.namespace.clone().unwrap_or_default();
            match t.resource.as_str() {
                "deployments" => play_deployment(&mut s, &ns, &name, &mut obj),
                "jobs" => play_job(&mut s, &ns, &name, &mut obj),
                _ => {}
            }
            s.objects
                .entry(t.collection.clone())
                .or_default()
                .insert(name, obj.clone());
            respond(StatusCode::CREATED, &obj)
        }
        (Method::DELETE, Some(name), None) => {
            let removed = s
                .objects
                .get_mut(&t.collection)
                .and_then(|c| c.remove(name));
            match removed {
                Some(o) => {
                    if t.resource == "namespaces" {
                        let prefix = format!("/namespaces/{name}/");
                        s.objects.retain(|k, _| !k.contains(&prefix));
                    }
                    respond(StatusCode::OK, &o)
                }
                None => status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("{} \"{name}\" not found", t.resource),
                ),
            }
        }
        (Method::DELETE, None, None) => {
            let mut removed = Vec::new();
            if let Some(c) = s.objects.get_mut(&t.collection) {
                let names: Vec<String> = c
                    .iter()
                    .filter(|(_, o)| matches_labels(o, &labels))
                    .map(|(k, _)| k.clone())
                    .collect();
                for n in names {
                    removed.extend(c.remove(&n));
                }
            }
            respond(
                StatusCode::OK,
                &json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": removed}),
            )
        }
        (m, _, _) => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("{m} {path}"),
        ),
    })
}

fn template_labels(obj: &Value) -> Value {
    obj["spec"]["template"]["metadata"]["labels"].clone()
}

fn add_pod(s: &mut State, ns: &str, name: &str, labels: Value, node: &str, status: Value) {
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"nodeName": node, "containers": [{"name": "c"}]},
        "status": status});
    s.objects
        .entry(format!("/api/v1/namespaces/{ns}/pods"))
        .or_default()
        .insert(name.to_owned(), pod);
}

fn add_event(
    s: &mut State,
    ns: &str,
    object: &str,
    type_: &str,
    reason: &str,
    message: &str,
    at: &str,
) {
    s.counter += 1;
    let name = format!("{object}.{}", s.counter);
    let ev = json!({"apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name, "namespace": ns},
        "involvedObject": {"kind": "Pod", "name": object, "namespace": ns},
        "type": type_, "reason": reason, "message": message, "lastTimestamp": at});
    s.objects
        .entry(format!("/api/v1/namespaces/{ns}/events"))
        .or_default()
        .insert(name, ev);
}

fn play_deployment(s: &mut State, ns: &str, name: &str, obj: &mut Value) {
    let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(1);
    let pod_name = format!("{name}-5d8f7-x2k4p");
    let labels = template_labels(obj);
    let server_node = schedulable(s).first().cloned().unwrap_or_default();
    if s.never_ready.contains(name) {
        obj["status"] =
            json!({"replicas": replicas, "readyReplicas": 0, "unavailableReplicas": replicas});
        let image = obj["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        add_pod(
            s,
            ns,
            &pod_name,
            labels,
            &server_node,
            json!({
            "phase": "Pending",
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [{"name": "echo", "ready": false, "restartCount": 0, "image": image, "imageID": "",
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": format!("Back-off pulling image \"{image}\"")}}}]}),
        );
        add_event(
            s,
            ns,
            &pod_name,
            "Normal",
            "Scheduled",
            "Successfully assigned to node-a",
            "2026-01-01T00:00:01Z",
        );
        add_event(
            s,
            ns,
            &pod_name,
            "Warning",
            "Failed",
            &format!("Failed to pull image \"{image}\": not found"),
            "2026-01-01T00:00:02Z",
        );
    } else {
        obj["status"] =
            json!({"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas});
        let image = obj["spec"]["template"]["spec"]["containers"][0]["image"].clone();
        add_pod(
            s,
            ns,
            &pod_name,
            labels,
            &server_node,
            json!({
            "phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "echo", "ready": true, "restartCount": 0, "image": image,
                "imageID": format!("{}@sha256:{}", image.as_str().unwrap_or(""), "ab".repeat(32)),
                "state": {"running": {}}}]}),
        );
    }
}

fn play_job(s: &mut State, ns: &str, name: &str, obj: &mut Value) {
    let n = obj["spec"]["parallelism"].as_i64().unwrap_or(1);
    let mut labels = template_labels(obj);
    labels["job-name"] = json!(name);
    // The scheduler's part: honour "not on the server's node" when the Job asks for it, and
    // spread the pods one per node.
    let nodes = schedulable(s);
    let terms = obj["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        ["requiredDuringSchedulingIgnoredDuringExecution"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let off_server = terms
        .iter()
        .any(|t| t["labelSelector"]["matchLabels"]["wasmbench.dev/role"] == "server");
    let candidates: Vec<&String> = nodes
        .iter()
        .skip(usize::from(off_server && nodes.len() > 1))
        .collect();
    for i in 0..n {
        let node = candidates[i as usize % candidates.len()].clone();
        add_pod(
            s,
            ns,
            &format!("{name}-{i}-q7w9z"),
            labels.clone(),
            &node,
            json!({"phase": "Succeeded"}),
        );
    }
    obj["status"] = json!({"succeeded": n, "active": 0});
}

//! The cluster's RuntimeClasses, their handlers, the nodes that report each handler, and the
//! wasmbench variants that run on each: what `wasmbench k8s runtimes` prints, so a user can
//! see before a run which variants their cluster can take.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::node::v1::RuntimeClass;
use kube::Api;
use kube::api::ListParams;

use crate::Error;
use crate::driver::Cluster;
use crate::error::forbidden_or;
use crate::variant::Variant;

/// One RuntimeClass of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeClassInfo {
    /// Its name (what a pod's `runtimeClassName` says).
    pub name: String,
    /// The container runtime handler it selects on the node.
    pub handler: String,
    /// The nodes whose status lists the handler; `None` when no node reports its handlers
    /// (the field exists since Kubernetes 1.30 and is filled by containerd 2.0+ and CRI-O).
    pub nodes: Option<Vec<String>>,
    /// wasmbench variants whose pods name this RuntimeClass.
    pub variants: Vec<Variant>,
}

/// What `wasmbench k8s runtimes` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runtimes {
    /// Every RuntimeClass, by name.
    pub classes: Vec<RuntimeClassInfo>,
    /// Node names.
    pub nodes: Vec<String>,
    /// wasmbench variants whose RuntimeClass the cluster does not have, with that name.
    pub missing: Vec<(Variant, &'static str)>,
}

/// Reads the RuntimeClasses and nodes. Both are cluster-scoped: an account limited to a
/// namespace gets one line naming the permission it lacks.
pub async fn list(cluster: &Cluster) -> Result<Runtimes, Error> {
    let classes: Api<RuntimeClass> = Api::all(cluster.client.clone());
    let classes = classes
        .list(&ListParams::default())
        .await
        .map_err(forbidden_or(
            "list RuntimeClasses",
            "runtimeclasses.node.k8s.io",
        ))?;
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    let nodes = nodes
        .list(&ListParams::default())
        .await
        .map_err(forbidden_or("list nodes", "nodes"))?;
    Ok(assemble(&classes.items, &nodes.items))
}

/// [`Runtimes`] from the listed objects.
pub fn assemble(classes: &[RuntimeClass], nodes: &[Node]) -> Runtimes {
    // Handler name → the nodes listing it; `None` when no node lists any handler.
    let mut by_handler: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut any_reported = false;
    let mut node_names = Vec::new();
    for node in nodes {
        let name = node.metadata.name.clone().unwrap_or_default();
        let handlers = node
            .status
            .as_ref()
            .and_then(|s| s.runtime_handlers.as_ref());
        if let Some(hs) = handlers.filter(|hs| !hs.is_empty()) {
            any_reported = true;
            for h in hs {
                by_handler
                    .entry(h.name.clone().unwrap_or_default())
                    .or_default()
                    .push(name.clone());
            }
        }
        node_names.push(name);
    }
    node_names.sort();
    let mut out: Vec<RuntimeClassInfo> = classes
        .iter()
        .map(|rc| {
            let name = rc.metadata.name.clone().unwrap_or_default();
            RuntimeClassInfo {
                variants: Variant::ALL
                    .into_iter()
                    .filter(|v| v.runtime_class() == Some(name.as_str()))
                    .collect(),
                nodes: any_reported
                    .then(|| by_handler.get(&rc.handler).cloned().unwrap_or_default()),
                handler: rc.handler.clone(),
                name,
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    let missing = Variant::ALL
        .into_iter()
        .filter_map(|v| v.runtime_class().map(|rc| (v, rc)))
        .filter(|(_, rc)| !out.iter().any(|c| c.name == *rc))
        .collect();
    Runtimes {
        classes: out,
        nodes: node_names,
        missing,
    }
}

/// Checks that every RuntimeClass in `wanted` exists and, where the nodes report their
/// handlers, that some node has its handler.
pub fn check_usable(r: &Runtimes, wanted: &[String]) -> Result<(), Error> {
    for name in wanted {
        let unusable = |why: String| Error::RuntimeClassUnusable {
            runtime_class: name.clone(),
            why,
        };
        let Some(c) = r.classes.iter().find(|c| &c.name == name) else {
            return Err(unusable("does not exist on the cluster".to_owned()));
        };
        if c.nodes.as_ref().is_some_and(Vec::is_empty) {
            return Err(unusable(format!(
                "selects handler {}, which no node's container runtime reports",
                c.handler
            )));
        }
    }
    Ok(())
}

/// The report as text: one line per RuntimeClass, then the variants the cluster cannot run.
pub fn render(r: &Runtimes) -> String {
    let mut s = String::new();
    if r.classes.is_empty() {
        s.push_str("no RuntimeClass on the cluster: only the native variant runs\n");
    }
    for c in &r.classes {
        let nodes = match &c.nodes {
            None => "nodes: not reported (the nodes' container runtime does not list its \
                     handlers; containerd 2.0+ and CRI-O do)"
                .to_string(),
            Some(n) if n.is_empty() => "nodes: none has this handler".to_string(),
            Some(n) => format!("nodes: {}", n.join(", ")),
        };
        let variants = if c.variants.is_empty() {
            "no wasmbench variant".to_string()
        } else {
            let names: Vec<&str> = c.variants.iter().map(|v| v.name()).collect();
            format!("variants: {}", names.join(", "))
        };
        let _ = writeln!(s, "{}  handler {}  {nodes}  {variants}", c.name, c.handler);
    }
    if !r.missing.is_empty() {
        let mut by_class: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (v, rc) in &r.missing {
            by_class.entry(rc).or_default().push(v.name());
        }
        let list: Vec<String> = by_class
            .iter()
            .map(|(rc, vs)| format!("{rc} ({})", vs.join(", ")))
            .collect();
        let _ = writeln!(
            s,
            "missing RuntimeClasses (variants): {}; install the runtime on the nodes and the \
             RuntimeClass (docs/kubernetes.md), or name the variant in `k8s run --variants` to \
             let wasmbench create the RuntimeClass",
            list.join(", ")
        );
    }
    let _ = writeln!(s, "{} nodes: {}", r.nodes.len(), r.nodes.join(", "));
    s
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{NodeRuntimeHandler, NodeStatus};
    use kube::api::ObjectMeta;

    use super::*;

    fn class(name: &str, handler: &str) -> RuntimeClass {
        RuntimeClass {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            handler: handler.into(),
            ..Default::default()
        }
    }

    fn node(name: &str, handlers: Option<&[&str]>) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            status: Some(NodeStatus {
                runtime_handlers: handlers.map(|hs| {
                    hs.iter()
                        .map(|h| NodeRuntimeHandler {
                            name: Some((*h).into()),
                            ..Default::default()
                        })
                        .collect()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn each_class_names_its_handler_nodes_and_variants() {
        let r = assemble(
            &[class("wasmbench", "wasmbench"), class("crun", "crun")],
            &[
                node("n2", Some(&["", "runc", "wasmbench"])),
                node("n1", Some(&["", "runc"])),
            ],
        );
        assert_eq!(r.nodes, ["n1", "n2"]);
        let wb = &r.classes[1];
        assert_eq!(wb.name, "wasmbench");
        assert_eq!(wb.nodes.as_deref(), Some(&["n2".to_string()][..]));
        assert_eq!(
            wb.variants,
            [Variant::Shim, Variant::ShimHttp, Variant::ShimHttpP3]
        );
        assert_eq!(r.classes[0].nodes.as_deref(), Some(&[][..]));
        let text = render(&r);
        assert!(
            text.contains("crun  handler crun  nodes: none has this handler"),
            "{text}"
        );
        assert!(
            text.contains("nodes: n2  variants: wasmbench-shim,"),
            "{text}"
        );
        // wasmtime, wasmedge, wasmer and spin have no RuntimeClass here.
        assert!(
            text.contains("wasmtime (wasmtime)") && !text.contains("crun (crun-wasmedge"),
            "{text}"
        );
    }

    #[test]
    fn nodes_that_report_no_handlers_are_said_so_not_read_as_missing() {
        let r = assemble(&[class("wasmbench", "wasmbench")], &[node("n1", None)]);
        assert_eq!(r.classes[0].nodes, None);
        assert!(render(&r).contains("nodes: not reported"), "{}", render(&r));
        let r = assemble(&[], &[node("n1", None)]);
        assert!(render(&r).starts_with("no RuntimeClass on the cluster"));
    }

    #[test]
    fn a_missing_class_or_a_handler_on_no_node_is_one_line() {
        let classes = [class("wasmbench", "wasmbench"), class("crun", "crun")];
        let r = assemble(&classes, &[node("n1", Some(&["runc", "wasmbench"]))]);
        check_usable(&r, &["wasmbench".into()]).unwrap();
        for (wanted, needle) in [
            ("spin", "RuntimeClass spin does not exist on the cluster"),
            (
                "crun",
                "RuntimeClass crun selects handler crun, which no node",
            ),
        ] {
            let e = check_usable(&r, &[wanted.into()]).unwrap_err().to_string();
            assert!(e.contains(needle) && !e.contains('\n'), "{e}");
        }
        // Nodes that report nothing cannot rule a class out.
        let r = assemble(&classes, &[node("n1", None)]);
        check_usable(&r, &["crun".into()]).unwrap();
    }
}

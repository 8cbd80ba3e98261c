use std::path::PathBuf;
use std::time::Duration;
use wasmbench_vocab::one_line;

/// Everything that can go wrong in this crate. Each message is one line saying what is wrong
/// and, where the user can act, how to fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No kubeconfig could be found.
    #[error(
        "no kubeconfig found ({searched}): create a cluster with deploy/kind/create.sh or pass --kubeconfig"
    )]
    KubeconfigMissing {
        /// Where we looked, in words.
        searched: String,
    },
    /// The kubeconfig exists but cannot be used (bad YAML, unknown context, bad credentials).
    #[error(
        "cannot use kubeconfig {path}: {reason}: fix the file, or pick another with --kubeconfig / --context"
    )]
    Kubeconfig {
        /// The file that was read.
        path: PathBuf,
        /// What kube reported.
        reason: String,
    },
    /// The API server did not answer.
    #[error(
        "cannot reach the Kubernetes API server at {url}: {reason}: check that the cluster runs (kubectl cluster-info) or choose another with --kubeconfig / --context"
    )]
    Unreachable {
        /// The server URL from the kubeconfig.
        url: String,
        /// The transport or API error.
        reason: String,
    },
    /// The API server answered but did not accept the kubeconfig's credentials.
    #[error(
        "the Kubernetes API server at {url} rejected the credentials ({code} {reason}): fix the kubeconfig's user, or pick another with --kubeconfig / --context"
    )]
    Unauthorized {
        /// The server URL from the kubeconfig.
        url: String,
        /// HTTP status: 401 (not authenticated) or 403 (not allowed).
        code: u16,
        /// The API server's reason, e.g. `Unauthorized`.
        reason: String,
    },
    /// The account may not make a call the command needs (HTTP 403).
    #[error(
        "the account may not {action} ({permission}): ask the cluster's admin for that permission, or use another account with --kubeconfig / --context"
    )]
    Forbidden {
        /// What was being done, e.g. `list RuntimeClasses`.
        action: String,
        /// The RBAC rule that would allow it, e.g. `get/list on runtimeclasses.node.k8s.io,
        /// cluster-scoped`.
        permission: String,
    },
    /// An API call was answered with an error.
    #[error("Kubernetes API call failed ({action}): {reason}")]
    Api {
        /// What the driver was doing, e.g. `create Deployment echo-native`.
        action: String,
        /// The server's message.
        reason: String,
    },
    /// A server pod met a condition that waiting cannot cure (its RuntimeClass handler is not
    /// configured on the node, its image may not be pulled, its spec is invalid).
    #[error("deployment {deployment} cannot start: {diagnosis}")]
    CannotStart {
        /// The Deployment's name.
        deployment: String,
        /// What the pod's status and events say.
        diagnosis: String,
    },
    /// A RuntimeClass a user's image is to run under is missing, or its handler is on no node.
    #[error(
        "RuntimeClass {runtime_class} {why}: install the runtime on the nodes and its RuntimeClass (docs/kubernetes.md), or name another with --wasm-image IMAGE=RUNTIMECLASS (`wasmbench k8s runtimes` lists the cluster's)"
    )]
    RuntimeClassUnusable {
        /// The RuntimeClass's name.
        runtime_class: String,
        /// What is wrong, e.g. `does not exist on the cluster`.
        why: String,
    },
    /// A Deployment did not become ready in time.
    #[error("deployment {deployment} not ready after {}s: {diagnosis}", timeout.as_secs())]
    NotReady {
        /// Deployment name.
        deployment: String,
        /// The timeout that expired.
        timeout: Duration,
        /// The failing pod, its phase and container state, and its recent events.
        diagnosis: String,
    },
    /// The server pod was replaced or its container restarted while it was loaded: the
    /// figures mix two servers and a restart's gap.
    #[error(
        "the server pod changed during the load ({what}), so its figures mix two servers: find out why (kubectl describe / events) and run again"
    )]
    ServerDisrupted {
        /// What changed, e.g. `pod echo-native-x replaced by echo-native-y`.
        what: String,
    },
    /// A load Job failed or did not finish in time.
    #[error("load job {job} did not succeed: {diagnosis}")]
    JobFailed {
        /// Job name.
        job: String,
        /// What the Job's pods report.
        diagnosis: String,
    },
    /// A load pod's log holds no JSON summary.
    #[error("no JSON summary in the log of pod {pod} (last line: {last_line:?}): {hint}")]
    NoSummary {
        /// The pod whose log was read.
        pod: String,
        /// The log's last non-empty line, for a hint.
        last_line: String,
        /// What to check, for the load engine that ran.
        hint: &'static str,
    },
    /// A load pod's log holds JSON that is not a load summary this wasmbench reads, or
    /// summaries that cannot be merged.
    #[error(
        "the summary in the log of pod {pod} is not a wasmbench load summary ({reason}): use the same wasmbench version for the image (--image-tag)"
    )]
    BadSummary {
        /// The pod whose log was read.
        pod: String,
        /// What did not fit.
        reason: String,
    },
    /// The plan or a flag value is invalid.
    #[error("invalid plan: {0}")]
    InvalidPlan(String),
    /// An unknown runtime variant name.
    #[error(
        "unknown variant `{0}`: expected one of {names}",
        names = crate::variant::Variant::ALL.map(|v| v.name()).join(", ")
    )]
    UnknownVariant(String),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Building a binary with cargo failed.
    #[error("building {what} failed: {reason}")]
    Build {
        /// What was being built.
        what: String,
        /// Why (cargo's last error line, or the spawn error).
        reason: String,
    },
    /// A value could not be serialised.
    #[error("cannot serialise {what}: {reason}")]
    Serialize {
        /// What was being serialised.
        what: String,
        /// The serialiser's message.
        reason: String,
    },
}

impl Error {
    /// True when the cluster cannot be reached, rejects the credentials or no usable
    /// kubeconfig exists (exit code 14 in the CLI).
    pub fn is_cluster_unreachable(&self) -> bool {
        matches!(
            self,
            Error::KubeconfigMissing { .. }
                | Error::Kubeconfig { .. }
                | Error::Unreachable { .. }
                | Error::Unauthorized { .. }
                | Error::Forbidden { .. }
        )
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Maps a failed API call to [`Error::Api`] naming what was being done.
pub(crate) fn api_err(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let action = action.into();
    move |e| Error::Api {
        action,
        reason: match &e {
            kube::Error::Api(s) => one_line(format!("{} ({})", s.message, s.reason)),
            other => one_line(other.to_string()),
        },
    }
}

/// A 403 becomes the permission to ask for; anything else the API's own error.
pub(crate) fn forbidden_or(
    action: &'static str,
    resource: &'static str,
) -> impl FnOnce(kube::Error) -> Error {
    move |e| match &e {
        kube::Error::Api(s) if s.code == 403 => Error::Forbidden {
            action: action.into(),
            permission: format!(
                "get/list on {resource}, which is cluster-scoped: a namespace-scoped account \
                 cannot have it"
            ),
        },
        _ => api_err(action)(e),
    }
}

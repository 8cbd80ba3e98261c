//! Runs the comparison on a Kubernetes cluster: images, manifests, apply/wait/collect/cleanup.
#![deny(missing_docs)]

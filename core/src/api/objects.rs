//! What the API needs to know about Kubernetes objects: which Nodes and Running pods
//! exist, and their labels. The cluster watch caches ([`ClusterView`]) provide it in the
//! server; tests and the demo can assemble an [`ObjectSet`].

use super::selector;
use crate::cluster::ClusterView;
pub use crate::cluster::Labels;
use crate::cluster::{Node, Pod};

/// Read access to the Nodes and Running pods the API serves.
pub trait Objects {
    /// A Node's labels, or `None` when no such Node exists.
    fn node_labels(&self, name: &str) -> Option<&Labels>;
    /// Every Node, in name order.
    fn for_each_node(&self, visit: &mut dyn FnMut(&str, &Labels));
    /// A Running pod's labels, or `None` when no such Running pod exists.
    fn pod_labels(&self, namespace: &str, name: &str) -> Option<&Labels>;
    /// Running pods in (namespace, name) order, of one namespace or of all.
    fn for_each_pod(&self, namespace: Option<&str>, visit: &mut dyn FnMut(&str, &str, &Labels));
}

impl selector::Labels for Labels {
    fn lookup(&self, key: &str) -> Option<&str> {
        self.get(key)
    }
}

impl Objects for ClusterView {
    fn node_labels(&self, name: &str) -> Option<&Labels> {
        self.node(name).map(|n| &n.labels)
    }

    fn for_each_node(&self, visit: &mut dyn FnMut(&str, &Labels)) {
        for n in self.nodes() {
            visit(&n.name, &n.labels);
        }
    }

    fn pod_labels(&self, namespace: &str, name: &str) -> Option<&Labels> {
        self.pod(namespace, name).map(|p| &p.labels)
    }

    fn for_each_pod(&self, namespace: Option<&str>, visit: &mut dyn FnMut(&str, &str, &Labels)) {
        match namespace {
            Some(ns) => self
                .pods_in(ns)
                .for_each(|p| visit(&p.namespace, &p.name, &p.labels)),
            None => self
                .pods()
                .for_each(|p| visit(&p.namespace, &p.name, &p.labels)),
        }
    }
}

/// A plain set of Nodes and Running pods, built by hand.
#[derive(Debug, Clone, Default)]
pub struct ObjectSet {
    nodes: Vec<Node>,
    pods: Vec<Pod>,
    view: ClusterView,
}

impl ObjectSet {
    pub fn add_node(&mut self, name: &str, labels: &[(&str, &str)]) {
        self.nodes.push(Node {
            name: name.into(),
            labels: Labels::new(labels.iter().copied()),
            addresses: Box::new([]),
            kubelet_port: 0,
            resource_metrics_path: None,
            ready: true,
        });
        self.rebuild();
    }

    /// Adds a Running pod (only Running pods exist for the API).
    pub fn add_pod(&mut self, namespace: &str, name: &str, labels: &[(&str, &str)]) {
        self.pods.push(Pod {
            namespace: namespace.into(),
            name: name.into(),
            labels: Labels::new(labels.iter().copied()),
        });
        self.rebuild();
    }

    fn rebuild(&mut self) {
        self.view =
            ClusterView::from_objects(self.nodes.iter().cloned(), self.pods.iter().cloned());
    }

    pub fn view(&self) -> &ClusterView {
        &self.view
    }
}

impl Objects for ObjectSet {
    fn node_labels(&self, name: &str) -> Option<&Labels> {
        self.view.node_labels(name)
    }

    fn for_each_node(&self, visit: &mut dyn FnMut(&str, &Labels)) {
        self.view.for_each_node(visit)
    }

    fn pod_labels(&self, namespace: &str, name: &str) -> Option<&Labels> {
        self.view.pod_labels(namespace, name)
    }

    fn for_each_pod(&self, namespace: Option<&str>, visit: &mut dyn FnMut(&str, &str, &Labels)) {
        self.view.for_each_pod(namespace, visit)
    }
}

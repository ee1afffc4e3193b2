//! What the API needs to know about Kubernetes objects: which Nodes and Running pods
//! exist, and their labels. The cluster watch caches provide it in the server; tests and
//! the demo can use [`ObjectSet`].

use std::collections::BTreeMap;

/// Labels sorted by key.
pub type Labels = [(String, String)];

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

/// A plain, owned set of objects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectSet {
    nodes: BTreeMap<String, Vec<(String, String)>>,
    pods: BTreeMap<(String, String), Vec<(String, String)>>,
}

fn sorted(labels: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    v.sort();
    v.dedup_by(|a, b| a.0 == b.0);
    v
}

impl ObjectSet {
    pub fn add_node(&mut self, name: &str, labels: &[(&str, &str)]) {
        self.nodes.insert(name.to_string(), sorted(labels));
    }

    /// Adds a Running pod (only Running pods exist for the API).
    pub fn add_pod(&mut self, namespace: &str, name: &str, labels: &[(&str, &str)]) {
        self.pods
            .insert((namespace.to_string(), name.to_string()), sorted(labels));
    }
}

impl Objects for ObjectSet {
    fn node_labels(&self, name: &str) -> Option<&Labels> {
        self.nodes.get(name).map(Vec::as_slice)
    }

    fn for_each_node(&self, visit: &mut dyn FnMut(&str, &Labels)) {
        for (name, labels) in &self.nodes {
            visit(name, labels);
        }
    }

    fn pod_labels(&self, namespace: &str, name: &str) -> Option<&Labels> {
        self.pods
            .get(&(namespace.to_string(), name.to_string()))
            .map(Vec::as_slice)
    }

    fn for_each_pod(&self, namespace: Option<&str>, visit: &mut dyn FnMut(&str, &str, &Labels)) {
        for ((ns, name), labels) in &self.pods {
            if namespace.is_none_or(|want| want == ns) {
                visit(ns, name, labels);
            }
        }
    }
}

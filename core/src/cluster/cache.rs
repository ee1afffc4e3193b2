//! Copy-on-write object caches and the read-only [`ClusterView`] other threads share.
//!
//! A [`Cache`] is a map namespace -> (name -> object), every level behind an `Arc`. Taking
//! a view clones one `Arc` (O(1)); the watcher's next change then copies only what the view
//! still shares: the outer map (one entry per namespace) and the one namespace it touches.
//! Later changes before the next view mutate in place. Cluster-scoped objects (Nodes) live
//! under the empty namespace.

use super::objects::{ClusterObject, Node, Pod};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

type Bucket<T> = BTreeMap<Box<str>, Arc<T>>;

/// Objects keyed by (namespace, name), iterated in byte-wise (namespace, name) order.
pub struct Cache<T> {
    buckets: Arc<BTreeMap<Box<str>, Arc<Bucket<T>>>>,
    len: usize,
}

impl<T> Clone for Cache<T> {
    fn clone(&self) -> Self {
        Cache {
            buckets: Arc::clone(&self.buckets),
            len: self.len,
        }
    }
}

impl<T> Default for Cache<T> {
    fn default() -> Self {
        Cache {
            buckets: Arc::default(),
            len: 0,
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Cache<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: PartialEq> PartialEq for Cache<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<T: ClusterObject> FromIterator<T> for Cache<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut cache = Cache::default();
        for obj in iter {
            cache.insert(obj);
        }
        cache
    }
}

impl<T> Cache<T> {
    /// Number of objects.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The object `namespace/name` (`""` as namespace for cluster-scoped objects).
    pub fn get(&self, namespace: &str, name: &str) -> Option<&T> {
        self.buckets.get(namespace)?.get(name).map(|o| &**o)
    }

    /// All objects, by namespace then name.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.buckets.values().flat_map(|b| b.values()).map(|o| &**o)
    }

    /// The objects of one namespace, by name.
    pub fn in_namespace(&self, namespace: &str) -> impl Iterator<Item = &T> {
        self.buckets
            .get(namespace)
            .into_iter()
            .flat_map(|b| b.values())
            .map(|o| &**o)
    }

    /// Namespaces holding at least one object, sorted.
    pub fn namespaces(&self) -> impl Iterator<Item = &str> {
        self.buckets.keys().map(|k| &**k)
    }
}

impl<T: ClusterObject> Cache<T> {
    /// Inserts or replaces; returns true when the key is new.
    pub(crate) fn insert(&mut self, obj: T) -> bool {
        let buckets = Arc::make_mut(&mut self.buckets);
        let bucket = Arc::make_mut(buckets.entry(obj.namespace().into()).or_default());
        let fresh = bucket.insert(obj.name().into(), Arc::new(obj)).is_none();
        self.len += usize::from(fresh);
        fresh
    }

    /// Removes `namespace/name`; returns true when it was present.
    pub(crate) fn remove(&mut self, namespace: &str, name: &str) -> bool {
        // Check first so that a no-op delete does not copy shared maps.
        if self.get(namespace, name).is_none() {
            return false;
        }
        let buckets = Arc::make_mut(&mut self.buckets);
        let Some(shared) = buckets.get_mut(namespace) else {
            return false;
        };
        let bucket = Arc::make_mut(shared);
        let removed = bucket.remove(name).is_some();
        if bucket.is_empty() {
            buckets.remove(namespace);
        }
        self.len -= usize::from(removed);
        removed
    }

    /// Whether `obj`'s key is present.
    pub(crate) fn contains_key_of(&self, obj: &T) -> bool {
        self.get(obj.namespace(), obj.name()).is_some()
    }
}

/// The informer's "not synced" answer for the `metric-informer-sync` health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotSynced {
    /// The initial Node list has not completed.
    Nodes,
    /// The initial Pod list has not completed.
    Pods,
}

impl fmt::Display for NotSynced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotSynced::Nodes => "cache for node informer has not synced",
            NotSynced::Pods => "cache for pod informer has not synced",
        })
    }
}

impl std::error::Error for NotSynced {}

/// A consistent, immutable picture of the Node and Pod caches.
///
/// Cheap to clone and `Send + Sync`: hand clones to serving threads. It does not change
/// when the watchers do; take a new one from [`Cluster::view`](super::Cluster::view).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterView {
    nodes: Cache<Node>,
    pods: Cache<Pod>,
    nodes_synced: bool,
    pods_synced: bool,
}

impl ClusterView {
    /// A view from caches and sync flags (as [`Cluster::view`](super::Cluster::view) builds it).
    pub fn new(
        nodes: Cache<Node>,
        pods: Cache<Pod>,
        nodes_synced: bool,
        pods_synced: bool,
    ) -> Self {
        ClusterView {
            nodes,
            pods,
            nodes_synced,
            pods_synced,
        }
    }

    /// A synced view holding exactly these objects (fixtures, simulations).
    pub fn from_objects(
        nodes: impl IntoIterator<Item = Node>,
        pods: impl IntoIterator<Item = Pod>,
    ) -> Self {
        ClusterView::new(
            nodes.into_iter().collect(),
            pods.into_iter().collect(),
            true,
            true,
        )
    }

    /// The Node named `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.get("", name)
    }

    /// All Nodes, by name.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter()
    }

    /// Number of Nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The Running pod `namespace/name`.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<&Pod> {
        self.pods.get(namespace, name)
    }

    /// The Running pods of `namespace`, by name.
    pub fn pods_in(&self, namespace: &str) -> impl Iterator<Item = &Pod> {
        self.pods.in_namespace(namespace)
    }

    /// All Running pods, by namespace then name.
    pub fn pods(&self) -> impl Iterator<Item = &Pod> {
        self.pods.iter()
    }

    /// Number of Running pods.
    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    /// The Node cache itself.
    pub fn node_cache(&self) -> &Cache<Node> {
        &self.nodes
    }

    /// The Pod cache itself.
    pub fn pod_cache(&self) -> &Cache<Pod> {
        &self.pods
    }

    /// Whether the initial Node list has completed.
    pub fn nodes_synced(&self) -> bool {
        self.nodes_synced
    }

    /// Whether the initial Pod list has completed.
    pub fn pods_synced(&self) -> bool {
        self.pods_synced
    }

    /// The `metric-informer-sync` check: Nodes first, then Pods, as upstream reports them.
    pub fn informer_sync(&self) -> Result<(), NotSynced> {
        if !self.nodes_synced {
            Err(NotSynced::Nodes)
        } else if !self.pods_synced {
            Err(NotSynced::Pods)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::objects::Labels;

    fn pod(ns: &str, name: &str) -> Pod {
        Pod {
            namespace: ns.into(),
            name: name.into(),
            labels: Labels::default(),
        }
    }

    #[test]
    fn order_lookup_and_copy_on_write() {
        let mut cache: Cache<Pod> = [pod("b", "x"), pod("a", "z"), pod("a", "y")]
            .into_iter()
            .collect();
        let names: Vec<_> = cache
            .iter()
            .map(|p| format!("{}/{}", p.namespace, p.name))
            .collect();
        assert_eq!(names, ["a/y", "a/z", "b/x"]);
        let snapshot = cache.clone();
        assert!(cache.insert(pod("a", "w")));
        assert!(!cache.insert(pod("a", "w")));
        assert!(cache.remove("b", "x"));
        assert!(!cache.remove("b", "x"));
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.namespaces().collect::<Vec<_>>(), ["a"]);
        // The earlier snapshot is untouched.
        assert_eq!(snapshot.len(), 3);
        assert!(snapshot.get("b", "x").is_some());
        assert!(snapshot.get("a", "w").is_none());
        assert_eq!(cache.in_namespace("a").count(), 3);
        assert_eq!(cache.in_namespace("nope").count(), 0);
    }

    #[test]
    fn informer_sync_reports_nodes_first() {
        let v = ClusterView::default();
        assert_eq!(v.informer_sync(), Err(NotSynced::Nodes));
        assert_eq!(
            NotSynced::Nodes.to_string(),
            "cache for node informer has not synced"
        );
        let v = ClusterView::new(Cache::default(), Cache::default(), true, false);
        assert_eq!(v.informer_sync(), Err(NotSynced::Pods));
        assert!(ClusterView::from_objects([], []).informer_sync().is_ok());
    }
}

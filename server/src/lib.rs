//! Library half of the `metrics-server` binary: command-line flags, kubeconfig and
//! in-cluster configuration, serving and client certificates, logging setup, the wiring
//! from flags to a running server, and the embedded demo cluster.

pub mod certs;
pub mod demo;
pub mod flags;
pub mod kubeconfig;
pub mod logging;
pub mod run;

#[cfg(test)]
pub(crate) mod test_support {
    //! Helpers shared by the unit tests.

    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    static COUNTER: AtomicUsize = AtomicUsize::new(0);

    /// A fresh directory under the system temporary directory, removed on drop.
    #[derive(Debug)]
    pub(crate) struct TempDir(PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> TempDir {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!(
                "metrics-server-test-{tag}-{}-{n}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).expect("temporary directory can be created");
            TempDir(path)
        }

        pub(crate) fn path(&self) -> &Path {
            &self.0
        }

        pub(crate) fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
            let p = self.0.join(rel);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).expect("parent directory can be created");
            }
            std::fs::write(&p, bytes).expect("test file can be written");
            p
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

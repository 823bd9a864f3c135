//! Test support for the end-to-end suites: the shared test cluster, namespaces, webhook registration.

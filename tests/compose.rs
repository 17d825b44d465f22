//! docker-compose.bench.yml cannot run on machines without a Docker engine, so this test
//! keeps it honest another way: its published ports must be the ones the native
//! launchers in services/ and the shipped workloads use, and its image versions the ones
//! the launchers install.

use std::collections::BTreeMap;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// service -> (image, host ports published on 127.0.0.1)
fn compose() -> BTreeMap<String, (String, Vec<u16>)> {
    let doc: serde_yaml::Value = serde_yaml::from_str(&read("docker-compose.bench.yml")).expect("valid YAML");
    let services = doc["services"].as_mapping().expect("services");
    services
        .iter()
        .map(|(name, svc)| {
            let image = svc["image"].as_str().expect("image").to_string();
            let ports = svc["ports"]
                .as_sequence()
                .map(|s| {
                    s.iter()
                        .map(|p| {
                            let p = p.as_str().expect("port as a string");
                            let parts: Vec<&str> = p.split(':').collect();
                            assert_eq!(parts.len(), 3, "{p}: publish as 127.0.0.1:HOST:CONTAINER");
                            assert_eq!(parts[0], "127.0.0.1", "{p}: loopback only");
                            parts[1].parse().expect("host port")
                        })
                        .collect()
                })
                .unwrap_or_default();
            assert!(svc.get("healthcheck").is_some(), "{name:?} has a healthcheck");
            (name.as_str().expect("name").to_string(), (image, ports))
        })
        .collect()
}

#[test]
fn compose_ports_match_the_native_launchers() {
    let c = compose();
    let expect = |svc: &str, file: &str, default_port: &str| {
        let (_, ports) = &c[svc];
        let launcher = read(file);
        assert!(launcher.contains(default_port), "{file} uses port {default_port}");
        let port: u16 = default_port.parse().unwrap();
        assert!(ports.contains(&port), "compose publishes {svc} on {port}: {ports:?}");
    };
    expect("pgvector", "services/engines/pgvector.sh", "5433");
    expect("chroma", "services/engines/chroma.sh", "8000");
    expect("elasticsearch", "services/engines/elasticsearch.sh", "9200");
    expect("neo4j", "services/engines/neo4j.sh", "7687");
    assert!(c["qdrant"].1.contains(&6333) && c["qdrant"].1.contains(&6334));
}

#[test]
fn compose_versions_match_what_the_launchers_install() {
    let c = compose();
    assert!(c["pgvector"].0.starts_with("pgvector/pgvector:0.8.0-"), "{}", c["pgvector"].0);
    assert!(read("services/engines/pgvector.sh").contains("PGVECTOR_VERSION=0.8.0"));
    assert!(c["chroma"].0.ends_with(":1.5.9"), "{}", c["chroma"].0);
    assert!(read("services/engines/chroma.sh").contains("CHROMA_VERSION:-1.5.9"));
    assert!(c["elasticsearch"].0.ends_with(":8.14.1"), "{}", c["elasticsearch"].0);
    assert!(read("services/elasticsearch/pom.xml").contains("<elasticsearch.version>8.14.1</elasticsearch.version>"));
    assert!(c["qdrant"].0.starts_with("qdrant/qdrant:v1.16."), "{}", c["qdrant"].0);
    assert_eq!(c["neo4j"].0, "neo4j:5.26-community");
    assert!(read("services/engines/neo4j.sh").contains("NEO4J_VERSION=5.26."));
    assert!(read("services/neo4j/pom.xml").contains("<neo4j.version>5.26."));
}

#[test]
fn workload_urls_point_at_published_ports() {
    let compose = compose();
    let published: Vec<u16> = compose.values().flat_map(|(_, p)| p.clone()).collect();
    for entry in std::fs::read_dir(root().join("workloads")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let engines = doc.get("engines").and_then(|e| e.as_table()).cloned().unwrap_or_default();
        for (name, engine) in engines {
            // url = "${VAR:-scheme://user:pass@127.0.0.1:PORT/...}"
            let Some(url) = engine.get("url").and_then(|u| u.as_str()) else { continue };
            let Some(at) = url.find("127.0.0.1:") else { continue };
            let port: String = url[at + 10..].chars().take_while(|c| c.is_ascii_digit()).collect();
            let port: u16 = port.parse().unwrap_or_else(|_| panic!("{}: {url}", path.display()));
            // An engine that only a native launcher runs (no compose service of that name,
            // e.g. the 3-node Elasticsearch) must use that launcher's port instead.
            match engine.get("service").and_then(|s| s.as_str()).filter(|s| !compose.contains_key(*s)) {
                Some(service) => {
                    let launcher = read(&format!("services/engines/{service}.sh"));
                    assert!(
                        launcher.contains(&format!(":-{port}}}")),
                        "{}: engines.{name}: port {port} is not the default port of services/engines/{service}.sh",
                        path.display()
                    );
                }
                None => assert!(
                    published.contains(&port),
                    "{}: engines.{name}: {url}: port {port} is not published by compose",
                    path.display()
                ),
            }
        }
    }
}

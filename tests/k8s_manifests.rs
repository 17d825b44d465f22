//! deploy/k8s/ and the Dockerfile run dbbench as N load-generator shards on Kubernetes.
//! Where the tests run there is no cluster and no Docker engine, so this test checks what
//! can be checked by reading: the facts that tie the files together (the shard count,
//! written three times; the results path the shards write and the merge reads; the names
//! of the claim, the workload and the run's parameters; the image and its user), and what
//! the Dockerfile needs from the repository. With kubectl on PATH it also runs
//! deploy/k8s/check.sh and a typed round trip that finds misspelt field names; without
//! kubectl it says so and checks the rest.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_yaml::Value;

const K8S: &str = "deploy/k8s";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every YAML document of a file, empty ones left out.
fn docs(rel: &str) -> Vec<Value> {
    let text = read(rel);
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{rel}: not YAML: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

/// The one document of `kind` in a file.
fn object(rel: &str, kind: &str) -> Value {
    let mut found: Vec<Value> = docs(rel).into_iter().filter(|d| d["kind"].as_str() == Some(kind)).collect();
    assert_eq!(found.len(), 1, "{rel}: expected one {kind}, found {}", found.len());
    found.remove(0)
}

fn str_at<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str().unwrap_or_else(|| panic!("{what}: expected a string, found {v:?}"))
}

fn seq<'a>(v: &'a Value, what: &str) -> &'a [Value] {
    v.as_sequence().map(|s| s.as_slice()).unwrap_or_else(|| panic!("{what}: expected a list, found {v:?}"))
}

fn shards_job() -> Value {
    object(&format!("{K8S}/shards-job.yaml"), "Job")
}

fn merge_job() -> Value {
    object(&format!("{K8S}/merge-job.yaml"), "Job")
}

fn results_pod() -> Value {
    object(&format!("{K8S}/results-pod.yaml"), "Pod")
}

/// The pod spec of a Job or a Pod.
fn pod_spec(o: &Value) -> &Value {
    match o["kind"].as_str() {
        Some("Pod") => &o["spec"],
        _ => &o["spec"]["template"]["spec"],
    }
}

/// The pod's one container.
fn container(o: &Value) -> &Value {
    let cs = seq(&pod_spec(o)["containers"], "containers");
    assert_eq!(cs.len(), 1, "{}: one container", o["metadata"]["name"].as_str().unwrap_or("?"));
    &cs[0]
}

fn strings(v: &Value, what: &str) -> Vec<String> {
    seq(v, what).iter().map(|a| str_at(a, what).to_string()).collect()
}

/// The value of `--name` in `args`, written `--name=value` or `--name value`.
fn flag(args: &[String], name: &str) -> Option<String> {
    let eq = format!("{name}=");
    args.iter().enumerate().find_map(|(i, a)| {
        if let Some(v) = a.strip_prefix(&eq) {
            Some(v.to_string())
        } else if a == name {
            args.get(i + 1).cloned()
        } else {
            None
        }
    })
}

/// The container's environment variable `name`.
fn env<'a>(c: &'a Value, name: &str) -> &'a Value {
    seq(&c["env"], "env")
        .iter()
        .find(|e| e["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("container {:?} has no env {name}", c["name"]))
}

/// Every `$(NAME)` Kubernetes expands in `s`.
fn references(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(at) = rest.find("$(") {
        let Some(end) = rest[at..].find(')') else { break };
        out.push(rest[at + 2..at + end].to_string());
        rest = &rest[at + end..];
    }
    out
}

/// Where the pod mounts the volume that is `claim`.
fn claim_mount(o: &Value, claim: &str) -> String {
    let spec = pod_spec(o);
    let volume = seq(&spec["volumes"], "volumes")
        .iter()
        .find(|v| v["persistentVolumeClaim"]["claimName"].as_str() == Some(claim))
        .unwrap_or_else(|| panic!("{:?}: no volume of claim {claim}", o["metadata"]["name"]));
    let name = str_at(&volume["name"], "volume name");
    let mount = seq(&container(o)["volumeMounts"], "volumeMounts")
        .iter()
        .find(|m| m["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("{:?}: volume {name} is not mounted", o["metadata"]["name"]));
    str_at(&mount["mountPath"], "mountPath").to_string()
}

fn results_claim() -> String {
    let pvc = object(&format!("{K8S}/results-pvc.yaml"), "PersistentVolumeClaim");
    let modes = strings(&pvc["spec"]["accessModes"], "accessModes");
    assert!(modes.iter().any(|m| m == "ReadWriteMany"), "shards on several nodes write at once: {modes:?}");
    str_at(&pvc["metadata"]["name"], "claim name").to_string()
}

fn kustomization() -> Value {
    object(&format!("{K8S}/kustomization.yaml"), "Kustomization")
}

/// The shard count N of `--shard I/N` or `--shard N`.
fn shard_count(args: &[String]) -> u64 {
    let shard = flag(args, "--shard").expect("the shards run with --shard");
    let n = match shard.split_once('/') {
        Some((i, n)) => {
            assert_eq!(i, "$(JOB_COMPLETION_INDEX)", "--shard {shard}: the index is the pod's completion index");
            n
        }
        None => &shard,
    };
    n.parse().unwrap_or_else(|_| panic!("--shard {shard}: N is a number"))
}

#[test]
fn every_manifest_is_kubernetes_yaml() {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(root().join(K8S)).expect(K8S) {
        let path = entry.expect(K8S).path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let rel = format!("{K8S}/{}", path.file_name().and_then(|n| n.to_str()).expect("file name"));
        let all = docs(&rel);
        assert!(!all.is_empty(), "{rel}: no document");
        for d in &all {
            assert!(d["apiVersion"].as_str().is_some(), "{rel}: a document without apiVersion");
            let kind = str_at(&d["kind"], &format!("{rel}: kind"));
            if kind != "Kustomization" {
                str_at(&d["metadata"]["name"], &format!("{rel}: metadata.name"));
            }
        }
        names.insert(rel);
    }
    for f in ["kustomization.yaml", "results-pvc.yaml", "shards-job.yaml", "merge-job.yaml", "results-pod.yaml"] {
        assert!(names.contains(&format!("{K8S}/{f}")), "{K8S}/{f} is missing");
    }
}

#[test]
fn the_shards_job_is_indexed_and_runs_as_many_shards_as_it_says() {
    let job = shards_job();
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"), "JOB_COMPLETION_INDEX is set only in Indexed Jobs");
    let completions = spec["completions"].as_u64().expect("completions");
    let parallelism = spec["parallelism"].as_u64().expect("parallelism");
    let args = strings(&container(&job)["args"], "args");
    let n = shard_count(&args);
    assert_eq!(completions, n, "completions is the N of --shard");
    assert_eq!(parallelism, n, "parallelism is the N of --shard: every shard runs at the same time");
    // A retried shard starts after --start-at; one failed shard must not kill the others.
    assert_eq!(spec["backoffLimitPerIndex"].as_u64(), Some(0), "no retries, per index");
    assert_eq!(spec["template"]["spec"]["restartPolicy"].as_str(), Some("Never"), "OnFailure would retry in place");

    assert_eq!(args.first().map(String::as_str), Some("run"));
    assert_eq!(flag(&args, "--start-at").as_deref(), Some("$(START_AT)"), "every shard gets the same --start-at");
    assert!(args.iter().any(|a| a == "--no-progress"), "no progress bars in pod logs");
    let out = flag(&args, "--out").expect("--out");
    assert!(
        out.contains("$(RUN)") && out.contains("$(JOB_COMPLETION_INDEX)"),
        "--out {out}: a folder per run and shard"
    );

    let affinity = &spec["template"]["spec"]["affinity"]["podAntiAffinity"];
    let terms = seq(&affinity["preferredDuringSchedulingIgnoredDuringExecution"], "preferred pod anti-affinity");
    let labels = spec["template"]["metadata"]["labels"].as_mapping().expect("pod labels");
    assert!(
        terms.iter().any(|t| {
            let term = &t["podAffinityTerm"];
            let selector = term["labelSelector"]["matchLabels"].as_mapping();
            term["topologyKey"].as_str() == Some("kubernetes.io/hostname")
                && selector.is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| labels.get(k) == Some(v)))
        }),
        "shards prefer nodes of their own, by a selector that matches the shards' labels"
    );
    let requests = &container(&job)["resources"]["requests"];
    assert!(requests["cpu"].as_str().is_some() && requests["memory"].as_str().is_some(), "cpu and memory requests");
}

#[test]
fn every_variable_the_args_use_is_one_the_pod_has() {
    for job in [shards_job(), merge_job()] {
        let c = container(&job);
        let indexed = job["spec"]["completionMode"].as_str() == Some("Indexed");
        let mut words = strings(&c["args"], "args");
        if !c["command"].is_null() {
            words.extend(strings(&c["command"], "command"));
        }
        for name in words.iter().flat_map(|w| references(w)) {
            // The Job controller adds JOB_COMPLETION_INDEX to the pods of an Indexed Job.
            if name == "JOB_COMPLETION_INDEX" {
                assert!(indexed, "{:?}: JOB_COMPLETION_INDEX exists only in Indexed Jobs", job["metadata"]["name"]);
                continue;
            }
            env(c, &name);
        }
        for name in ["RUN", "START_AT"] {
            if job["metadata"]["name"].as_str() == Some("dbbench-merge") && name == "START_AT" {
                continue;
            }
            let r = &env(c, name)["valueFrom"]["configMapKeyRef"];
            assert_eq!(r["name"].as_str(), Some("dbbench-run"), "{name} comes from the run's parameters");
            assert_eq!(r["key"].as_str(), Some(name));
        }
    }
    let shards = shards_job();
    let pg = &env(container(&shards), "DBBENCH_PG_URL")["valueFrom"]["secretKeyRef"];
    assert_eq!(pg["key"].as_str(), Some("DBBENCH_PG_URL"), "the engine URL (with its password) comes from a Secret");
    assert!(pg["name"].as_str().is_some());
}

#[test]
fn the_merge_reads_what_the_shards_write() {
    let claim = results_claim();
    let shards = shards_job();
    let merge = merge_job();
    let shard_mount = claim_mount(&shards, &claim);
    let merge_mount = claim_mount(&merge, &claim);
    claim_mount(&results_pod(), &claim);

    let out = flag(&strings(&container(&shards)["args"], "args"), "--out").expect("--out");
    let shard_dir = out
        .strip_prefix(&format!("{shard_mount}/"))
        .unwrap_or_else(|| panic!("--out {out} is on the results volume ({shard_mount})"));
    // The same folders as the merge pod sees them, every shard's.
    let every_shard = format!("{merge_mount}/{}/results.json", shard_dir.replace("$(JOB_COMPLETION_INDEX)", "*"));
    let merged = format!("{merge_mount}/{}/merged", shard_dir.split('/').next().expect("run folder"));

    let c = container(&merge);
    assert_eq!(strings(&c["command"], "command"), ["sh", "-c"], "the shell expands the glob over the shards");
    let script = strings(&c["args"], "args").join("\n");
    assert!(script.contains("dbbench report"), "{script}");
    assert!(script.contains(&every_shard), "the merge reads {every_shard}:\n{script}");
    assert!(script.contains(&format!("--out {merged}")), "the merge writes {merged}:\n{script}");
    assert_eq!(merge["spec"]["template"]["spec"]["restartPolicy"].as_str(), Some("Never"));
}

#[test]
fn the_workload_configmap_is_the_sharded_workload_and_names_the_engine_run() {
    let k = kustomization();
    let resources = strings(&k["resources"], "resources");
    for r in &resources {
        assert!(root().join(K8S).join(r).exists(), "kustomization: resource {r} does not exist");
    }
    assert!(resources.iter().any(|r| r == "shards-job.yaml") && resources.iter().any(|r| r == "results-pvc.yaml"));
    assert!(
        !resources.iter().any(|r| r == "merge-job.yaml"),
        "the merge must wait for the shards, not start with them"
    );

    let generators = seq(&k["configMapGenerator"], "configMapGenerator");
    assert_eq!(generators.len(), 1);
    let generated = str_at(&generators[0]["name"], "configMapGenerator name");
    let files = strings(&generators[0]["files"], "configMapGenerator files");
    assert_eq!(files.len(), 1, "{files:?}");
    // `key=path` or `path`, the key then being the file's name.
    let (key, file) = files[0].split_once('=').unwrap_or((&files[0], &files[0]));
    assert_eq!(file, "sharded.toml", "the copy of workloads/sharded.toml");

    let job = shards_job();
    let spec = pod_spec(&job);
    let volume = seq(&spec["volumes"], "volumes")
        .iter()
        .find(|v| v["configMap"]["name"].as_str() == Some(generated))
        .unwrap_or_else(|| panic!("the shards mount no volume of ConfigMap {generated}"));
    let mount = seq(&container(&job)["volumeMounts"], "volumeMounts")
        .iter()
        .find(|m| m["name"] == volume["name"])
        .expect("the workload volume is mounted");
    let args = strings(&container(&job)["args"], "args");
    assert_eq!(
        args.get(1).map(String::as_str),
        Some(format!("{}/{key}", str_at(&mount["mountPath"], "mountPath")).as_str()),
        "dbbench runs the workload the ConfigMap holds"
    );

    let workload: toml::Table = read(&format!("{K8S}/{file}")).parse().expect("the workload is TOML");
    let engines = workload["engines"].as_table().expect("[engines]");
    let engine = flag(&args, "--engines").expect("a sharded run names its one engine");
    assert!(
        engines.contains_key(&engine),
        "--engines {engine}: not an engine of the workload ({:?})",
        engines.keys().collect::<Vec<_>>()
    );
    assert_ne!(engine, "sqlite", "an embedded engine cannot be shared by shards");
}

#[test]
fn the_workload_copy_is_workloads_sharded_toml() {
    let original = std::fs::read(root().join("workloads/sharded.toml")).expect("workloads/sharded.toml");
    let copy = std::fs::read(root().join(K8S).join("sharded.toml")).expect("deploy/k8s/sharded.toml");
    assert!(
        original == copy,
        "deploy/k8s/sharded.toml differs from workloads/sharded.toml: cp workloads/sharded.toml deploy/k8s/"
    );
}

/// A Dockerfile's instructions, continuation lines joined, comments left out.
fn dockerfile() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in read("Dockerfile").lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && pending.is_empty()) {
            continue;
        }
        if let Some(head) = t.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(t);
        let (word, rest) = pending.split_once(' ').unwrap_or((&pending, ""));
        out.push((word.to_uppercase(), rest.trim().to_string()));
        pending.clear();
    }
    out
}

/// Is `path` in the build context, by .dockerignore's rules? The patterns it uses are a
/// name, a path, `*` or the same after `!`; a file is left out when the last pattern
/// matching it or a folder above it says so.
fn in_context(path: &str, ignore: &str) -> bool {
    let mut kept = true;
    for line in ignore.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (keep, pattern) = match line.strip_prefix('!') {
            Some(p) => (true, p.trim_end_matches('/')),
            None => (false, line.trim_end_matches('/')),
        };
        assert!(
            pattern == "*" || !pattern.contains(['*', '?', '[']),
            ".dockerignore pattern {line:?}: this test reads only names, paths and *"
        );
        let parts: Vec<&str> = path.split('/').collect();
        let matches = (1..=parts.len()).any(|n| {
            let prefix = parts[..n].join("/");
            if pattern == "*" {
                n == 1
            } else {
                prefix == pattern
            }
        });
        if matches {
            kept = keep;
        }
    }
    kept
}

#[test]
fn the_dockerfile_copies_what_exists_and_runs_dbbench() {
    let steps = dockerfile();
    let ignore = read(".dockerignore");
    let froms: Vec<&str> = steps.iter().filter(|(w, _)| w == "FROM").map(|(_, r)| r.as_str()).collect();
    assert!(froms.len() >= 2, "a build stage and a runtime stage: {froms:?}");
    assert!(froms[0].starts_with("rust:"), "{}", froms[0]);
    assert!(froms.last().is_some_and(|f| f.starts_with("debian:bookworm-slim")), "{froms:?}");

    let mut copies = 0;
    for (_, rest) in steps.iter().filter(|(w, _)| w == "COPY") {
        assert!(!rest.starts_with('['), "COPY {rest}: this test reads the plain form");
        let words: Vec<&str> = rest.split_whitespace().collect();
        if words.iter().any(|w| w.starts_with("--from=")) {
            continue;
        }
        let sources: Vec<&str> = words.iter().copied().filter(|w| !w.starts_with("--")).collect();
        assert!(sources.len() >= 2, "COPY {rest}");
        for s in &sources[..sources.len() - 1] {
            assert!(Path::new(&root()).join(s).exists(), "COPY {s}: not in the repository");
            assert!(in_context(s, &ignore), "COPY {s}: .dockerignore leaves it out of the build context");
            copies += 1;
        }
    }
    assert!(copies > 0, "the Dockerfile copies the sources");

    let build = steps
        .iter()
        .find(|(w, r)| w == "RUN" && r.contains("cargo build"))
        .map(|(_, r)| r.as_str())
        .expect("a RUN that builds");
    assert!(build.contains("cargo build --release --locked --bin dbbench"), "{build}");
    let cargo: toml::Table = read("Cargo.toml").parse().expect("Cargo.toml");
    let bins = cargo["bin"].as_array().expect("[[bin]]");
    assert!(bins.iter().any(|b| b["name"].as_str() == Some("dbbench")), "Cargo.toml has the bin dbbench");

    let last_stage = steps.iter().rposition(|(w, _)| w == "FROM").expect("FROM");
    let runtime = &steps[last_stage..];
    let entrypoint = runtime.iter().rfind(|(w, _)| w == "ENTRYPOINT").map(|(_, r)| r.as_str()).expect("ENTRYPOINT");
    let entrypoint: Vec<String> = serde_json::from_str(entrypoint).expect("ENTRYPOINT in exec form");
    assert_eq!(entrypoint, ["dbbench"]);
    assert!(runtime.iter().any(|(w, r)| w == "WORKDIR" && r == "/opt/dbbench"));
    assert!(runtime.iter().any(|(w, r)| w == "COPY" && r.split_whitespace().next() == Some("workloads")));

    // The pods' runAsNonRoot can check only a numeric user; theirs and the image's agree.
    let user = runtime.iter().rfind(|(w, _)| w == "USER").map(|(_, r)| r.as_str()).expect("USER");
    let (uid, gid) = user.split_once(':').unwrap_or((user, user));
    let uid: u64 = uid.parse().unwrap_or_else(|_| panic!("USER {user}: numeric"));
    assert_ne!(uid, 0, "the image runs as a user of its own");
    for o in [shards_job(), merge_job(), results_pod()] {
        let sc = &pod_spec(&o)["securityContext"];
        assert_eq!(sc["runAsNonRoot"].as_bool(), Some(true));
        assert_eq!(sc["runAsUser"].as_u64(), Some(uid), "{:?} runs as the image's user", o["metadata"]["name"]);
        assert_eq!(
            sc["runAsGroup"].as_u64(),
            gid.parse().ok(),
            "{:?} runs as the image's group",
            o["metadata"]["name"]
        );
    }
}

#[test]
fn every_pod_runs_the_same_image() {
    let images: BTreeSet<String> = [shards_job(), merge_job(), results_pod()]
        .iter()
        .map(|o| str_at(&container(o)["image"], "image").to_string())
        .collect();
    assert_eq!(images.len(), 1, "one image for the shards, the merge and the results pod: {images:?}");
}

/// Every key path in `v`, lists by index.
fn key_paths(v: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let p = format!("{prefix}/{k}");
                out.push(p.clone());
                key_paths(v, &p, out);
            }
        }
        serde_json::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                key_paths(v, &format!("{prefix}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn kubectl_present() -> bool {
    match Command::new("kubectl").args(["version", "--client"]).output() {
        Ok(o) => o.status.success(),
        Err(_) => false,
    }
}

#[test]
fn kubectl_reads_the_manifests_offline() {
    if !kubectl_present() {
        // Straight to stderr, past the test harness's capture, so the skip is seen.
        let _ = writeln!(
            std::io::stderr(),
            "kubectl_reads_the_manifests_offline: kubectl is not on PATH; deploy/k8s/check.sh and the field-name check did not run (the other tests read the same files)"
        );
        return;
    }
    let check = Command::new("bash").arg(root().join(K8S).join("check.sh")).output().expect("run check.sh");
    assert!(
        check.status.success(),
        "deploy/k8s/check.sh failed:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    // kubectl decodes an object into its Go type and prints it back; a field that type
    // does not have is dropped on the way, so a misspelt field is a path missing from what
    // comes back. (`set env` needs a change to print the object; it adds one variable.)
    for file in ["shards-job.yaml", "merge-job.yaml", "results-pod.yaml"] {
        let rel = format!("{K8S}/{file}");
        let out = Command::new("kubectl")
            .args(["set", "env", "--local", "-o", "json", "-f"])
            .arg(root().join(&rel))
            .arg("DBBENCH_FIELD_CHECK=1")
            .output()
            .expect("kubectl set env");
        assert!(out.status.success(), "{rel}: {}", String::from_utf8_lossy(&out.stderr));
        let typed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("kubectl -o json");
        let written = serde_json::to_value(docs(&rel).remove(0)).expect("YAML as JSON");
        let (mut mine, mut kept) = (Vec::new(), Vec::new());
        key_paths(&written, "", &mut mine);
        key_paths(&typed, "", &mut kept);
        let kept: BTreeSet<String> = kept.into_iter().collect();
        let unknown: Vec<&String> = mine.iter().filter(|p| !kept.contains(*p)).collect();
        assert!(unknown.is_empty(), "{rel}: fields Kubernetes does not know: {unknown:?}");
    }
}

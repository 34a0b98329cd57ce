//! The keys file as a snapshot and numbered changes beside it, end to end with the real
//! binaries: writers appending changes at once (CLI processes and the management API) on a
//! local file and on a real S3-protocol store, replicas applying them in place, folds made by
//! writers and by `compact`, folds that fail, writers killed mid-write, revocation by polling
//! alone, and a replica that fell behind a fold.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use heare_auth_store::{Backend, Location, StoreConfig};
use heare_auth_tests::{
    bin_dir, cli, env_refs, note_presented, stderr, stdout, transcribe_answer, Behaviour, Fault,
    FaultKind, S3Proxy, S3Server, Server, TempDir, S3_BUCKET,
};
use rand_core::{OsRng, RngCore};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// How many keys the large file starts with: each about 300 bytes, 120 KB in all, well over
/// the size up to which a writer folds every change into the file at once.
const BULK: usize = 400;

fn bulk_id(i: usize) -> String {
    format!("key_bulk{i:05}")
}

/// A secret of the legacy form (`sec_0…`), looked up as it is.
fn bulk_secret(i: usize) -> String {
    format!("sec_0bulk{i:05}")
}

/// A keys file of `n` keys with 200-byte names, as the CLI would write it.
fn keys_file(n: usize) -> Vec<u8> {
    let keys: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "id": bulk_id(i),
                "secret_hash": format!("{:x}", Sha256::digest(bulk_secret(i).as_bytes())),
                "name": format!("{i:05}{}", "n".repeat(195)),
            })
        })
        .collect();
    serde_json::to_vec_pretty(&json!({ "keys": keys })).unwrap()
}

/// Where the keys live for a test: a local directory or a running s3s-fs.
enum Holder {
    Local(TempDir),
    S3(S3Server),
}

/// A store holding a keys file of `n` bulk keys, and the environment that points the binaries
/// at it.
struct Place {
    holder: Holder,
    env: Vec<(String, String)>,
}

impl Place {
    /// `keys.json` in a new local directory.
    fn local(name: &str, n: usize) -> Place {
        let dir = TempDir::new(name);
        let file = dir.path("keys.json");
        std::fs::write(&file, keys_file(n)).unwrap();
        let env = vec![("KEYS_FILE".into(), file.to_str().unwrap().into())];
        Place {
            holder: Holder::Local(dir),
            env,
        }
    }

    /// The object `keys.json` in a new s3s-fs, written through a signed PUT.
    fn s3(name: &str, n: usize) -> Place {
        let s3 = S3Server::start(name);
        let env = s3.env("keys.json");
        s3_backend(&env).put(&keys_file(n), None).unwrap();
        Place {
            holder: Holder::S3(s3),
            env,
        }
    }

    /// The directory on disk holding the keys file and its changes (s3s-fs keeps each object
    /// as a file under its bucket's directory).
    fn dir(&self) -> PathBuf {
        match &self.holder {
            Holder::Local(dir) => dir.root().to_path_buf(),
            Holder::S3(s3) => s3.data.path(S3_BUCKET),
        }
    }

    /// The keys file as stored, read alone, as an older reader would.
    fn stored_file(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.dir().join("keys.json")).unwrap()).unwrap()
    }

    /// The changes stored beside the keys file, by number; each must parse whole and carry its
    /// own number (a half-written change is never visible under a change's name).
    fn stored_changes(&self) -> BTreeMap<u64, Value> {
        let dir = self.dir().join("keys.json.changes");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return BTreeMap::new();
        };
        let mut changes = BTreeMap::new();
        for entry in entries {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let Some(seq) = name.strip_suffix(".json").and_then(|n| n.parse().ok()) else {
                continue;
            };
            let text = std::fs::read(dir.join(&name)).unwrap();
            let change: Value = serde_json::from_slice(&text)
                .unwrap_or_else(|e| panic!("change {name} is not whole JSON: {e}"));
            assert_eq!(change["seq"], seq, "{name}");
            changes.insert(seq, change);
        }
        changes
    }

    /// The environment with `extra` set.
    fn with(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env = self.env.clone();
        for (k, v) in extra {
            env.retain(|(n, _)| n != k);
            env.push((k.to_string(), v.to_string()));
        }
        env
    }
}

/// Runs the CLI and checks that it succeeded; its standard output.
fn run(env: &[(String, String)], args: &[&str]) -> String {
    let out = cli(args, &env_refs(env));
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

/// A key made with the CLI: (id, secret).
fn cli_create(env: &[(String, String)], name: &str, scopes: &[&str]) -> (String, String) {
    let mut args = vec!["create", "--name", name, "--json", "--no-refresh"];
    for scope in scopes {
        args.extend(["--scopes", scope]);
    }
    let created: Value = serde_json::from_str(&run(env, &args)).unwrap();
    (
        created["id"].as_str().unwrap().into(),
        created["secret"].as_str().unwrap().into(),
    )
}

/// `method path` on `server`'s management API as `admin`, with a JSON body when given:
/// (status, body).
fn api(
    server: &Server,
    admin: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    note_presented(admin);
    let request = ureq::request(method, &format!("{}{path}", server.url))
        .timeout(Duration::from_secs(30))
        .set("Authorization", &format!("Bearer {admin}"));
    let result = match body {
        Some(body) => request
            .set("Content-Type", "application/json")
            .send_string(&body.to_string()),
        None => request.call(),
    };
    let response = match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    let status = response.status();
    let text = response.into_string().unwrap();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    transcribe_answer(
        &format!("{method} {path}\n{status}\n{text}\n"),
        body["secret"].as_str(),
    );
    (status, body)
}

/// Ids and whether each is disabled, of keys as JSON records.
fn states(keys: &Value) -> BTreeMap<String, bool> {
    keys.as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let disabled = k["disabled"].as_bool().unwrap_or(false);
            (k["id"].as_str().unwrap().to_string(), disabled)
        })
        .collect()
}

/// What `heare-auth export` gives: each key's id and whether it is disabled.
fn exported(env: &[(String, String)]) -> BTreeMap<String, bool> {
    let file: Value = serde_json::from_str(&run(env, &["export"])).unwrap();
    states(&file["keys"])
}

/// Every key a replica's management API lists, page by page: id and whether it is disabled.
fn listed(server: &Server, admin: &str) -> BTreeMap<String, bool> {
    let mut keys = BTreeMap::new();
    let mut path = "/keys?limit=1000".to_string();
    loop {
        let (status, page) = api(server, admin, "GET", &path, None);
        assert_eq!(status, 200, "{page}");
        keys.extend(states(&page["keys"]));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/keys?limit=1000&cursor={cursor}"),
            None => return keys,
        }
    }
}

/// Polls `check` every 20 ms until it holds or `limit` passes; how long it took.
fn within(limit: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// How many times a replica logged `event`.
fn count(server: &Server, event: &str) -> usize {
    server.logs().iter().filter(|l| l["event"] == event).count()
}

/// Checks that no replica failed to read the store (a partial or unparsable change would be a
/// `refresh_failed`).
fn assert_no_failed_refresh(replicas: &[Server]) {
    for r in replicas {
        let failed: Vec<Value> = (r.logs().into_iter())
            .filter(|l| l["event"] == "refresh_failed")
            .collect();
        assert!(failed.is_empty(), "{}: {failed:?}", r.url);
    }
}

/// What became of a key a writer made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Active,
    Disabled,
    Deleted,
}

/// A key a writer made, and what it did to it after.
#[derive(Debug)]
struct Made {
    id: String,
    secret: String,
    fate: Fate,
}

/// One way to change the keys: the CLI, or a replica's management API.
trait Writer {
    fn create(&self, name: &str) -> (String, String);
    fn disable(&self, id: &str);
    fn delete(&self, id: &str);
}

struct CliWriter<'a>(&'a [(String, String)]);

impl Writer for CliWriter<'_> {
    fn create(&self, name: &str) -> (String, String) {
        cli_create(self.0, name, &[])
    }
    fn disable(&self, id: &str) {
        run(self.0, &["disable", id, "--no-refresh"]);
    }
    fn delete(&self, id: &str) {
        run(self.0, &["delete", id, "--yes", "--no-refresh"]);
    }
}

struct ApiWriter<'a> {
    server: &'a Server,
    admin: &'a str,
}

impl Writer for ApiWriter<'_> {
    fn create(&self, name: &str) -> (String, String) {
        let (status, body) = api(
            self.server,
            self.admin,
            "POST",
            "/keys",
            Some(json!({ "name": name })),
        );
        assert_eq!(status, 201, "{body}");
        (
            body["id"].as_str().unwrap().into(),
            body["secret"].as_str().unwrap().into(),
        )
    }
    fn disable(&self, id: &str) {
        let (status, body) = api(
            self.server,
            self.admin,
            "POST",
            &format!("/keys/{id}/disable"),
            None,
        );
        assert_eq!(status, 200, "{body}");
    }
    fn delete(&self, id: &str) {
        let (status, body) = api(
            self.server,
            self.admin,
            "DELETE",
            &format!("/keys/{id}"),
            None,
        );
        assert_eq!(status, 200, "{body}");
    }
}

/// How many changes each writer makes: rounds of five (three keys made, the first disabled,
/// the second deleted).
const OPS: usize = 20;

/// Makes [`OPS`] changes with `writer`, naming its keys after `tag`.
fn write_keys(tag: &str, writer: &dyn Writer) -> Vec<Made> {
    let mut made = Vec::new();
    for round in 0..OPS / 5 {
        let mut keys: Vec<Made> = ["disabled", "deleted", "active"]
            .iter()
            .map(|what| {
                let (id, secret) = writer.create(&format!("{tag}-{round}-{what}"));
                Made {
                    id,
                    secret,
                    fate: Fate::Active,
                }
            })
            .collect();
        writer.disable(&keys[0].id);
        keys[0].fate = Fate::Disabled;
        writer.delete(&keys[1].id);
        keys[1].fate = Fate::Deleted;
        made.extend(keys);
    }
    made
}

/// The keys the store should hold: the bulk keys, `admin`, and those made and not deleted.
fn expected(admin: &str, made: &[Made]) -> BTreeMap<String, bool> {
    let mut keys: BTreeMap<String, bool> = (0..BULK).map(|i| (bulk_id(i), false)).collect();
    keys.insert(admin.to_string(), false);
    for m in made.iter().filter(|m| m.fate != Fate::Deleted) {
        keys.insert(m.id.clone(), m.fate == Fate::Disabled);
    }
    keys
}

/// Waits until `replica` answers every key made as its fate says (200 while active, 403
/// once disabled or deleted), and every tenth bulk key with 200.
fn assert_serves(replica: &Server, made: &[Made]) {
    let deadline = Duration::from_secs(20);
    for m in made {
        let want = if m.fate == Fate::Active { 200 } else { 403 };
        assert!(
            within(deadline, || replica.verify(&m.secret).0 == want).is_some(),
            "{}: {} ({:?}) is not answered {want}",
            replica.url,
            m.id,
            m.fate
        );
    }
    for i in (0..BULK).step_by(10) {
        assert_eq!(replica.verify(&bulk_secret(i)).0, 200, "{}", bulk_id(i));
    }
}

/// `clis` CLI processes and the management API of the first of three replicas (all polling
/// every 0.2 s) write at once; then every replica, `export` and the changes stored agree, and
/// `compact` folds the changes into a file that holds every key alone.
fn writers_at_once(place: &Place, clis: usize) {
    let env = place.env.clone();
    let (admin_id, admin) = cli_create(&env, "admin", &["keys:admin"]);
    let replica_env = place.with(&[("REFRESH_INTERVAL", "0.2"), ("MANAGEMENT_API", "1")]);
    let replicas: Vec<Server> = (0..3)
        .map(|_| Server::start(&env_refs(&replica_env)))
        .collect();

    let started = Instant::now();
    let made: Vec<Made> = std::thread::scope(|scope| {
        let env = &env;
        let mut writers: Vec<_> = (0..clis)
            .map(|w| scope.spawn(move || write_keys(&format!("cli{w}"), &CliWriter(env))))
            .collect();
        let (server, admin) = (&replicas[0], admin.as_str());
        writers.push(scope.spawn(move || write_keys("api", &ApiWriter { server, admin })));
        writers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let writes = 1 + (clis + 1) * OPS;
    eprintln!(
        "{writes} changes by {} writers in {:?}",
        clis + 1,
        started.elapsed()
    );

    let want = expected(&admin_id, &made);
    let exported = exported(&env);
    assert_eq!(exported, want, "export");
    for replica in &replicas {
        assert_serves(replica, &made);
        assert_eq!(listed(replica, &admin), exported, "{} lists", replica.url);
    }

    // The changes are numbered without a gap from the snapshot's next_change on (and before
    // it: folded changes stay ten minutes), one per write plus the notes of folds.
    let changes = place.stored_changes();
    let next = place.stored_file()["next_change"].as_u64().unwrap_or(0);
    let (first, last) = (
        *changes.keys().next().unwrap(),
        *changes.keys().last().unwrap(),
    );
    assert_eq!(
        changes.len() as u64,
        last - first + 1,
        "a gap: {:?}",
        changes.keys()
    );
    assert!(
        first <= next && next <= last + 1,
        "next_change {next}, changes {first}..={last}"
    );
    let notes = changes
        .values()
        .filter(|c| c["snapshot"].is_string())
        .count();
    assert_eq!(changes.len() - notes, writes, "one change per write");
    eprintln!("changes {first}..={last}, next_change {next}, {notes} folds noted");
    assert_no_failed_refresh(&replicas);

    // `compact` folds them: the file alone then holds every key as it is.
    let loads: Vec<usize> = replicas
        .iter()
        .map(|r| count(r, "keys_file_loaded"))
        .collect();
    let out = run(&env, &["compact", "--no-refresh"]);
    let file = place.stored_file();
    assert_eq!(
        states(&file["keys"]),
        exported,
        "the file alone, after {out:?}"
    );
    let folded_to = file["next_change"].as_u64().unwrap();
    let changes = place.stored_changes();
    assert_eq!(folded_to, last + 1, "{out}");
    assert!(changes[&folded_to]["snapshot"].is_string(), "a fold's note");
    for (replica, loaded) in replicas.iter().zip(loads) {
        let caught_up = replica.wait_for_log(Duration::from_secs(10), |l| {
            l["event"] == "changes_applied" && l["seq"].as_u64() >= Some(folded_to)
        });
        assert!(
            caught_up.is_some(),
            "{} never applied the fold's note",
            replica.url
        );
        let whole = count(replica, "keys_file_loaded") - loaded;
        if whole > 0 {
            // It polled between the new snapshot and its note: a whole load, by design.
            eprintln!(
                "{} loaded the whole file {whole} time(s) after compact",
                replica.url
            );
        }
        assert_serves(replica, &made);
        assert_eq!(
            listed(replica, &admin),
            exported,
            "{} after compact",
            replica.url
        );
    }
    assert_no_failed_refresh(&replicas);
}

/// On a local file, four CLI processes and the management API writing at once lose nothing:
/// three replicas serve exactly what `export` gives, the changes are numbered without a gap,
/// and `compact` leaves a file that holds every key by itself.
#[test]
fn local_writers_at_once_lose_nothing_and_compact_folds_every_change() {
    writers_at_once(&Place::local("changes-local", BULK), 4);
}

/// The same on a real S3-protocol store (s3s-fs), with three CLI processes and the API.
#[test]
fn s3_writers_at_once_lose_nothing_and_compact_folds_every_change() {
    writers_at_once(&Place::s3("changes-s3", BULK), 3);
}

/// A write whose fold into the keys object fails (every PUT of the object itself cut, its
/// changes let through) succeeds, its change stored beside; the replicas serve it; the first
/// write once the store takes PUTs again folds every change. On a small file, which every
/// write folds.
#[test]
fn writes_whose_fold_fails_are_kept_and_the_next_write_folds_them() {
    let place = Place::s3("changes-fold-fails", 10);
    let Holder::S3(s3) = &place.holder else {
        unreachable!()
    };
    let proxy = S3Proxy::start(s3.port, Behaviour::default());
    let writer = place.with(&[("S3_ENDPOINT", &proxy.endpoint)]);
    let replica_env = place.with(&[("REFRESH_INTERVAL", "0.2")]);
    let replicas: Vec<Server> = (0..3)
        .map(|_| Server::start(&env_refs(&replica_env)))
        .collect();
    let before = std::fs::read(place.dir().join("keys.json")).unwrap();

    proxy.inject(Fault::always("PUT", FaultKind::Cut).object_only());
    let made = write_keys("unfolded", &CliWriter(&writer));
    let hits: Vec<String> = (proxy.seen().into_iter())
        .filter(|(_, hit)| *hit)
        .map(|(request, _)| request)
        .collect();
    assert!(hits.len() >= OPS, "every write tried to fold: {hits:?}");
    assert!(
        hits.iter().all(|r| r == "PUT /heare-keys/keys.json"),
        "{hits:?}"
    );
    assert_eq!(
        std::fs::read(place.dir().join("keys.json")).unwrap(),
        before
    );
    assert_eq!(
        place.stored_changes().len(),
        OPS,
        "every change stored beside"
    );
    for replica in &replicas {
        for m in &made {
            let want = if m.fate == Fate::Active { 200 } else { 403 };
            let served = within(Duration::from_secs(10), || {
                replica.verify(&m.secret).0 == want
            });
            assert!(served.is_some(), "{}: {} not {want}", replica.url, m.id);
        }
    }

    proxy.clear();
    let (last_id, last_secret) = cli_create(&writer, "folds", &[]);
    let file = place.stored_file();
    assert_eq!(file["next_change"], OPS as u64 + 1, "every change folded");
    let mut want: BTreeMap<String, bool> = (0..10).map(|i| (bulk_id(i), false)).collect();
    for m in made.iter().filter(|m| m.fate != Fate::Deleted) {
        want.insert(m.id.clone(), m.fate == Fate::Disabled);
    }
    want.insert(last_id, false);
    assert_eq!(states(&file["keys"]), want, "the file alone");
    assert_eq!(exported(&place.env), want);
    for replica in &replicas {
        let served = within(Duration::from_secs(10), || {
            replica.verify(&last_secret).0 == 200
        });
        assert!(served.is_some(), "{}", replica.url);
        for m in &made {
            let want = if m.fate == Fate::Active { 200 } else { 403 };
            assert_eq!(
                replica.verify(&m.secret).0,
                want,
                "{}: {}",
                replica.url,
                m.id
            );
        }
    }
    assert_no_failed_refresh(&replicas);
}

/// CLI writers killed (SIGKILL) at random points of their write leave a store that loads:
/// every change stored parses whole, every write that finished is there, replicas polling
/// throughout never fail a read and serve what `export` gives, and the store takes writes.
#[test]
fn writers_killed_mid_write_leave_no_half_written_change() {
    let place = Place::local("changes-killed", BULK);
    let env = place.env.clone();
    let (admin_id, admin) = cli_create(&env, "admin", &["keys:admin"]);
    let replica_env = place.with(&[("REFRESH_INTERVAL", "0.2"), ("MANAGEMENT_API", "1")]);
    let replicas: Vec<Server> = (0..3)
        .map(|_| Server::start(&env_refs(&replica_env)))
        .collect();

    let (mut finished, mut killed) = (Vec::new(), 0);
    let mut disabled = Vec::new();
    for i in 0..80 {
        // Mostly creates; every third a disable of a bulk key.
        let name = format!("killable-{i}");
        let bulk = bulk_id(i);
        let args: Vec<&str> = match i % 3 {
            2 => vec!["disable", &bulk, "--no-refresh"],
            _ => vec!["create", "--name", &name, "--json", "--no-refresh"],
        };
        let mut child = Command::new(bin_dir().join("heare-auth"))
            .args(&args)
            .env_clear()
            .envs(env_refs(&env))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(u64::from(OsRng.next_u32() % 60)));
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        match out.status.code() {
            Some(0) if i % 3 == 2 => disabled.push(bulk),
            Some(0) => {
                let created: Value = serde_json::from_slice(&out.stdout).unwrap();
                finished.push(created["id"].as_str().unwrap().to_string());
            }
            Some(code) => panic!("{args:?} failed with {code}"),
            None => killed += 1,
        }
    }
    eprintln!(
        "{} writes finished, {killed} killed",
        finished.len() + disabled.len()
    );
    assert!(killed > 0, "no writer was killed mid-way");

    // Nothing left behind stops a write (a lock held by a dead writer, say).
    let (after_id, after_secret) = cli_create(&env, "after the kills", &[]);
    let changes = place.stored_changes();
    let (first, last) = (
        *changes.keys().next().unwrap(),
        *changes.keys().last().unwrap(),
    );
    assert_eq!(
        changes.len() as u64,
        last - first + 1,
        "a gap: {:?}",
        changes.keys()
    );

    let file: Value = serde_json::from_str(&run(&env, &["export"])).unwrap();
    let exported = states(&file["keys"]);
    for id in finished.iter().chain([&admin_id, &after_id]) {
        assert_eq!(exported.get(id), Some(&false), "{id}");
    }
    for id in &disabled {
        assert_eq!(exported.get(id), Some(&true), "{id}");
    }
    // Any other key is a create killed after its change landed: its name says which.
    let others: Vec<&Value> = (file["keys"].as_array().unwrap().iter())
        .filter(|k| {
            let id = k["id"].as_str().unwrap();
            !id.starts_with("key_bulk") && id != admin_id && id != after_id
        })
        .collect();
    for key in &others {
        assert!(
            key["name"].as_str().unwrap().starts_with("killable-"),
            "{key}"
        );
    }
    eprintln!(
        "{} keys made by writers, {} of them by writers killed after their change landed",
        others.len(),
        others.len() - finished.len()
    );
    for replica in &replicas {
        let served = within(Duration::from_secs(10), || {
            replica.verify(&after_secret).0 == 200
        });
        assert!(served.is_some(), "{}", replica.url);
        assert_eq!(listed(replica, &admin), exported, "{} lists", replica.url);
    }
    assert_no_failed_refresh(&replicas);
    let fresh = Server::start(&env_refs(&replica_env));
    assert_eq!(listed(&fresh, &admin), exported, "a server started now");
}

/// A key disabled with the CLI, with no refresh URL, is refused by three replicas polling
/// every 0.5 s within the interval plus 1 s (and a 2 s margin for a busy test machine).
fn revocation_by_polling(place: &Place) {
    let env = place.env.clone();
    let replica_env = place.with(&[("REFRESH_INTERVAL", "0.5")]);
    let replicas: Vec<Server> = (0..3)
        .map(|_| Server::start(&env_refs(&replica_env)))
        .collect();
    let limit = Duration::from_millis(1500) + Duration::from_secs(2);
    let mut slowest = Duration::ZERO;
    for round in 0..3 {
        let (id, secret) = cli_create(&env, &format!("revoked-{round}"), &[]);
        for r in &replicas {
            let served = within(Duration::from_secs(10), || r.verify(&secret).0 == 200);
            assert!(served.is_some(), "{} never served {id}", r.url);
        }
        run(&env, &["disable", &id, "--no-refresh"]);
        let disabled_at = Instant::now();
        let times: Vec<Option<Duration>> = std::thread::scope(|scope| {
            let waits: Vec<_> = (replicas.iter())
                .map(|r| {
                    let secret = &secret;
                    scope.spawn(move || {
                        within(limit, || r.verify(secret).0 == 403).map(|_| disabled_at.elapsed())
                    })
                })
                .collect();
            waits.into_iter().map(|w| w.join().unwrap()).collect()
        });
        eprintln!("round {round}: refused after {times:?}");
        for (r, time) in replicas.iter().zip(&times) {
            let time = time.unwrap_or_else(|| panic!("{} still accepts {id}", r.url));
            slowest = slowest.max(time);
        }
    }
    eprintln!("slowest revocation: {slowest:?}");
    assert_no_failed_refresh(&replicas);
}

/// Revocation by polling alone, on a local file.
#[test]
fn a_key_disabled_locally_is_refused_everywhere_within_the_poll_interval() {
    revocation_by_polling(&Place::local("changes-revoke", BULK));
}

/// Revocation by polling alone, on a real S3-protocol store.
#[test]
fn a_key_disabled_in_s3_is_refused_everywhere_within_the_poll_interval() {
    revocation_by_polling(&Place::s3("changes-revoke-s3", BULK));
}

/// A replica that does not poll, behind a fold whose changes were since removed (as ten
/// minutes' retention would), loads the whole file on `/refresh` and serves the current set,
/// then applies the next change in place.
#[test]
fn a_replica_behind_a_removed_fold_loads_the_whole_file() {
    let place = Place::local("changes-behind", BULK);
    let env = place.env.clone();
    let replica = Server::start(&env_refs(&place.with(&[("REFRESH_INTERVAL", "0")])));
    assert_eq!(replica.verify(&bulk_secret(0)).0, 200);

    let made: Vec<(String, String)> = (0..3)
        .map(|i| cli_create(&env, &format!("while behind {i}"), &[]))
        .collect();
    run(&env, &["disable", &bulk_id(0), "--no-refresh"]);
    run(&env, &["delete", &bulk_id(1), "--yes", "--no-refresh"]);
    run(&env, &["compact", "--no-refresh"]);
    let next = place.stored_file()["next_change"].as_u64().unwrap();
    let changes_dir = place.dir().join("keys.json.changes");
    for seq in place.stored_changes().into_keys().filter(|&s| s < next) {
        std::fs::remove_file(changes_dir.join(format!("{seq:020}.json"))).unwrap();
    }
    assert_eq!(
        place.stored_changes().into_keys().collect::<Vec<_>>(),
        [next],
        "the fold's note alone is left"
    );
    for (_, secret) in &made {
        assert_eq!(replica.verify(secret).0, 403, "not yet served");
    }

    let (status, body) = replica.refresh();
    assert_eq!(status, 200, "{body}");
    let loaded = replica
        .wait_for_event("keys_file_loaded", Duration::from_secs(10))
        .expect("a whole load");
    assert_eq!(loaded["keys_loaded"], BULK + 3 - 1);
    for (_, secret) in &made {
        assert_eq!(replica.verify(secret).0, 200);
    }
    assert_eq!(replica.verify(&bulk_secret(0)).0, 403, "disabled");
    assert_eq!(replica.verify(&bulk_secret(1)).0, 403, "deleted");
    assert_eq!(replica.verify(&bulk_secret(2)).0, 200);

    // Caught up, it applies the next change in place.
    let (_, secret) = cli_create(&env, "after the load", &[]);
    assert_eq!(replica.refresh().0, 200);
    assert_eq!(replica.verify(&secret).0, 200);
    let applied = replica.wait_for_event("changes_applied", Duration::from_secs(5));
    assert!(applied.is_some(), "the next change applied in place");
    assert_eq!(
        count(&replica, "keys_file_loaded"),
        1,
        "one whole load only"
    );
    assert_no_failed_refresh(std::slice::from_ref(&replica));
}

/// The requests for the keys object and what is beside it that `proxy` saw from the
/// `from`th on.
fn requests_since(proxy: &S3Proxy, from: usize) -> Vec<String> {
    proxy
        .seen()
        .into_iter()
        .skip(from)
        .map(|(r, _)| r)
        .collect()
}

/// A change to a large keys object reads the keys it touches through the index of the
/// snapshot, in ranges (of the index, and of the object where the index says each key is),
/// never the whole object, once the first writer that read it whole wrote the index. An
/// index of another version of the object is not used; a fold writes the index of the new
/// snapshot; and a part of an object read after the object was replaced is refused.
#[test]
fn a_large_keys_object_is_changed_through_its_index_in_ranges() {
    let place = Place::s3("changes-index", BULK);
    let Holder::S3(s3) = &place.holder else {
        unreachable!()
    };
    let proxy = S3Proxy::start(s3.port, Behaviour::default());
    let writer = place.with(&[("S3_ENDPOINT", &proxy.endpoint)]);
    let whole = "GET /heare-keys/keys.json";
    let index = place.dir().join("keys.json.changes/index");

    // The first change reads the object whole, and writes its index.
    run(&writer, &["disable", &bulk_id(7), "--no-refresh"]);
    assert!(requests_since(&proxy, 0).iter().any(|r| r == whole));
    assert!(index.exists());
    // Then only ranges: of the index, and of the object for the keys changed.
    let seen = proxy.seen().len();
    run(&writer, &["disable", &bulk_id(100), "--no-refresh"]);
    run(&writer, &["delete", &bulk_id(200), "--yes", "--no-refresh"]);
    let (made, _) = cli_create(&writer, "made", &[]);
    run(
        &writer,
        &["update", &made, "--name", "renamed", "--no-refresh"],
    );
    let missing = cli(
        &["disable", "key_nobody", "--no-refresh"],
        &env_refs(&writer),
    );
    assert_eq!(missing.status.code(), Some(1), "{}", stderr(&missing));
    assert!(
        stderr(&missing).contains("key_nobody"),
        "{}",
        stderr(&missing)
    );
    let requests = requests_since(&proxy, seen);
    assert!(!requests.iter().any(|r| r == whole), "{requests:#?}");
    let ranged = |prefix: &str| {
        (requests.iter())
            .filter(|r| r.starts_with(prefix) && r.contains(" bytes="))
            .count()
    };
    assert!(
        ranged("GET /heare-keys/keys.json.changes/index ") >= 5,
        "{requests:#?}"
    );
    assert_eq!(ranged("GET /heare-keys/keys.json "), 2, "{requests:#?}");
    let keys = exported(&place.env);
    assert_eq!(keys.len(), BULK);
    assert_eq!((keys[&bulk_id(7)], keys[&bulk_id(100)]), (true, true));
    assert!(!keys.contains_key(&bulk_id(200)));
    let listed: Value = serde_json::from_str(&run(&place.env, &["show", &made, "--json"])).unwrap();
    assert_eq!(listed["name"], "renamed");

    // A part of the index or of the object that cannot be read (refused, or cut short) sends
    // the change the long way: the object read whole, and the change made. The first GET is
    // of the index; the first of the object alone, of the key's record in it.
    let faults = [
        (Fault::times("GET", FaultKind::Status(503), 1), 110),
        (
            Fault::times("GET", FaultKind::Status(503), 1).object_only(),
            120,
        ),
        (
            Fault::times("GET", FaultKind::TruncateBody, 1).object_only(),
            130,
        ),
    ];
    for (fault, id) in faults {
        proxy.inject(fault);
        let seen = proxy.seen().len();
        run(&writer, &["disable", &bulk_id(id), "--no-refresh"]);
        let requests = requests_since(&proxy, seen);
        assert!(
            requests.iter().any(|r| r == whole),
            "{fault:?}: {requests:#?}"
        );
        assert!(exported(&place.env)[&bulk_id(id)], "{fault:?}");
    }

    // The object replaced by another tool: its index is of another version, and not used.
    let mut file = place.stored_file();
    file["keys"][300]["name"] = json!("edited elsewhere");
    let backend = s3_backend(&place.env);
    let version = backend.version().unwrap();
    let replaced = backend.put(
        &serde_json::to_vec_pretty(&file).unwrap(),
        version.as_deref(),
    );
    assert!(
        matches!(replaced, Ok(heare_auth_store::Put::Written(_))),
        "{replaced:?}"
    );
    let seen = proxy.seen().len();
    run(&writer, &["disable", &bulk_id(300), "--no-refresh"]);
    assert!(requests_since(&proxy, seen).iter().any(|r| r == whole));
    let shown: Value =
        serde_json::from_str(&run(&place.env, &["show", &bulk_id(300), "--json"])).unwrap();
    assert_eq!(
        (shown["name"].as_str(), shown["disabled"].as_bool()),
        (Some("edited elsewhere"), Some(true))
    );

    // Folded: the new snapshot's index is written, and used by the next change.
    run(&writer, &["compact", "--no-refresh"]);
    let seen = proxy.seen().len();
    run(&writer, &["enable", &bulk_id(7), "--no-refresh"]);
    let requests = requests_since(&proxy, seen);
    assert!(!requests.iter().any(|r| r == whole), "{requests:#?}");
    assert!(!exported(&place.env)[&bulk_id(7)]);

    // A part read once the object it was opened on is replaced is not read from the new one.
    let parts = backend.index_parts().unwrap().expect("an index");
    assert!(parts.read_at(0, 16).unwrap().is_some());
    backend.put_index(b"another index\n").unwrap();
    assert_eq!(parts.read_at(0, 16).unwrap(), None);
}

/// The S3 backend the environment `env` names, reached directly.
fn s3_backend(env: &[(String, String)]) -> heare_auth_store::S3Backend {
    let config =
        StoreConfig::from_env(|k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
            .unwrap();
    let Location::S3(location) = config.location else {
        panic!("not S3")
    };
    heare_auth_store::S3Backend::new(&location).unwrap()
}

/// The CLI's 64th change to a large file folds the changes into it (after its answer, at the
/// lowest priority), and no change before it does: the file alone then holds every key.
#[test]
fn the_cli_folds_the_changes_at_every_64th_change() {
    let place = Place::local("changes-cli-fold", BULK);
    let before = std::fs::read(place.dir().join("keys.json")).unwrap();
    for i in 0..63 {
        run(&place.env, &["disable", &bulk_id(i), "--no-refresh"]);
    }
    assert_eq!(
        std::fs::read(place.dir().join("keys.json")).unwrap(),
        before
    );
    let out = run(&place.env, &["disable", &bulk_id(63), "--no-refresh"]);
    assert!(out.contains(&bulk_id(63)), "{out}");
    let file = place.stored_file();
    assert_eq!(file["next_change"], 64);
    let disabled = states(&file["keys"]).values().filter(|d| **d).count();
    assert_eq!(disabled, 64);
    assert!(
        place.stored_changes()[&64]["snapshot"].is_string(),
        "a fold's note"
    );
}

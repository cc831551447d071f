//! Behaviour tests of `SledJobStore` through the `JobStore` trait, on temporary stores.

use std::sync::Arc;

use bh_jobstore::{ChangeKind, HistoryLevel, HistoryQuery, JobStore, SledJobStore, Txn};
use bh_models::api::ListOptions;
use bh_models::history::{rfc3339_from_nanos, HISTORY_EXECUTION_LEVEL, HISTORY_JOB_LEVEL};
use bh_models::{
    ErrorCode, Evaluation, Execution, ExecutionStateType, Job, JobHistory, NodeInfo, NodeState,
    State,
};

const SECOND: i64 = 1_000_000_000;

fn job(id: &str, name: &str, namespace: &str) -> Job {
    Job {
        id: id.to_string(),
        name: name.to_string(),
        namespace: namespace.to_string(),
        job_type: "batch".to_string(),
        count: 1,
        ..Job::default()
    }
}

fn eval(id: &str, job_id: &str) -> Evaluation {
    Evaluation {
        id: id.to_string(),
        job_id: job_id.to_string(),
        status: "pending".to_string(),
        triggered_by: "job-register".to_string(),
        ..Evaluation::default()
    }
}

fn execution(id: &str, job_id: &str, node_id: &str, version: u64) -> Execution {
    Execution {
        id: id.to_string(),
        job_id: job_id.to_string(),
        node_id: node_id.to_string(),
        job_version: version,
        compute_state: State::new(ExecutionStateType::New, ""),
        ..Execution::default()
    }
}

fn node(id: &str) -> NodeState {
    NodeState {
        info: NodeInfo {
            node_id: id.to_string(),
            node_type: "Compute".to_string(),
            ..NodeInfo::default()
        },
        membership: "APPROVED".to_string(),
        ..NodeState::default()
    }
}

fn exec_event(job_id: &str, execution_id: &str, node_id: &str, at: i64) -> JobHistory {
    JobHistory {
        history_type: HISTORY_EXECUTION_LEVEL.to_string(),
        job_id: job_id.to_string(),
        execution_id: execution_id.to_string(),
        node_id: node_id.to_string(),
        job_version: 1,
        time: rfc3339_from_nanos(at),
        ..JobHistory::default()
    }
}

fn no_filter(_: &Job) -> bool {
    true
}

async fn submit(store: &dyn JobStore, id: &str, name: &str, namespace: &str, now: i64) -> Job {
    let done = store
        .submit_job(
            job(id, name, namespace),
            eval(&format!("v-{id}"), id),
            JobHistory::default(),
            now,
        )
        .await
        .unwrap();
    done.jobs[0].clone()
}

fn opts(limit: u32, order_by: &str, reverse: bool, token: &str) -> ListOptions {
    ListOptions {
        limit,
        order_by: order_by.to_string(),
        reverse,
        next_token: token.to_string(),
        ..ListOptions::default()
    }
}

async fn all_pages(store: &dyn JobStore, base: ListOptions) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut o = base;
    loop {
        let (jobs, token) = store.list_jobs(&o, &no_filter).await.unwrap();
        pages.push(jobs.iter().map(|j| j.id.clone()).collect());
        if token.is_empty() {
            return pages;
        }
        o.next_token = token;
    }
}

#[tokio::test]
async fn submit_writes_job_evaluation_and_history_together() {
    let store = SledJobStore::temporary().unwrap();
    let done = store
        .submit_job(
            job("j-1", "", ""),
            eval("v-1", "j-1"),
            JobHistory::default(),
            5 * SECOND,
        )
        .await
        .unwrap();

    let stored = store.get_job("j-1").await.unwrap();
    assert_eq!(stored, done.jobs[0]);
    assert_eq!(stored.revision, 1);
    assert_eq!(stored.version, 1);
    assert_eq!(stored.namespace, "default");
    assert_eq!(stored.name, "j-1", "name defaults to the ID");
    assert_eq!(stored.create_time, 5 * SECOND);
    assert_eq!(stored.modify_time, 5 * SECOND);

    let evaluation = store.get_evaluation("v-1").await.unwrap();
    assert_eq!(evaluation.create_time, 5 * SECOND);
    assert_eq!(store.list_evaluations().await.unwrap(), vec![evaluation]);

    let (history, token) = store
        .list_history("j-1", &HistoryQuery::default())
        .await
        .unwrap();
    assert!(token.is_empty());
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].seq_num, 1);
    assert_eq!(history[0].history_type, HISTORY_JOB_LEVEL);
    assert_eq!(history[0].time, rfc3339_from_nanos(5 * SECOND));
    assert_eq!(done.history, history);
    assert_eq!(store.job_revision("j-1").await.unwrap(), Some(1));
    assert_eq!(store.job_revision("j-missing").await.unwrap(), None);

    let err = store.get_job("j-missing").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    assert_eq!(err.message, "job not found: j-missing");
}

#[tokio::test]
async fn updates_bump_revision_and_keep_create_time() {
    let store = SledJobStore::temporary().unwrap();
    let mut current = submit(&store, "j-1", "web", "", 10).await;
    for expected in 2..=4 {
        current.state.message = format!("update {expected}");
        let done = store
            .commit(Txn::new(10 + expected as i64).update_job(current.clone()))
            .await
            .unwrap();
        current = done.jobs[0].clone();
        assert_eq!(current.revision, expected);
        assert_eq!(current.create_time, 10);
        assert_eq!(current.modify_time, 10 + expected as i64);
    }
    assert_eq!(store.get_job("j-1").await.unwrap(), current);

    // A new spec version is kept next to the old one.
    let mut v2 = current.clone();
    v2.version = 2;
    v2.priority = 7;
    store.commit(Txn::new(100).update_job(v2)).await.unwrap();
    let versions = store.job_versions("j-1").await.unwrap();
    assert_eq!(
        versions.iter().map(|j| j.version).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(versions[0].priority, 0);
    assert_eq!(versions[1].priority, 7);
    assert_eq!(store.job_version("j-1", 2).await.unwrap().priority, 7);
    assert_eq!(
        store.job_version("j-1", 3).await.unwrap_err().code,
        ErrorCode::NotFound
    );
    assert_eq!(
        store.job_versions("j-none").await.unwrap_err().code,
        ErrorCode::NotFound
    );
}

#[tokio::test]
async fn cas_conflict_writes_nothing() {
    let store = SledJobStore::temporary().unwrap();
    let stored = submit(&store, "j-1", "web", "", 1).await;
    let mut events = store.subscribe();

    let mut stale = stored.clone();
    stale.revision = 7;
    stale.state.message = "should not land".to_string();
    let txn = Txn::new(2)
        .put_evaluation(eval("v-2", "j-1"))
        .create_execution(execution("e-1", "j-1", "n-1", 1))
        .append_history(exec_event("j-1", "e-1", "n-1", 2))
        .update_job(stale);
    let err = store.commit(txn).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict);
    assert!(err.message.contains("job j-1"), "{}", err.message);
    assert!(
        err.message.contains("expected revision 7"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("stored revision is 1"),
        "{}",
        err.message
    );

    assert_eq!(store.get_job("j-1").await.unwrap(), stored);
    assert_eq!(
        store.get_evaluation("v-2").await.unwrap_err().code,
        ErrorCode::NotFound
    );
    assert_eq!(
        store.get_execution("e-1").await.unwrap_err().code,
        ErrorCode::NotFound
    );
    let (history, _) = store
        .list_history("j-1", &HistoryQuery::default())
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert!(
        events.try_recv().is_err(),
        "a failed commit sends no change"
    );

    // Creating what exists, and updating what does not, are conflicts too.
    let err = store
        .commit(Txn::new(3).create_job(job("j-1", "other", "")))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict);
    assert!(err.message.contains("already exists"), "{}", err.message);
    let err = store
        .commit(Txn::new(3).update_execution(execution("e-9", "j-1", "n-1", 1)))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict);
    assert!(err.message.contains("execution e-9"), "{}", err.message);

    // A name belongs to one job per namespace.
    let err = store
        .commit(Txn::new(3).create_job(job("j-2", "web", "")))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict);
    assert!(
        err.message.contains("already used by job j-1"),
        "{}",
        err.message
    );
    assert!(store
        .commit(Txn::new(3).create_job(job("j-2", "web", "other")))
        .await
        .is_ok());

    // The second write to one object in a transaction must expect the first one's revision.
    let e1 = execution("e-1", "j-1", "n-1", 1);
    let mut e1_again = e1.clone();
    e1_again.revision = 1;
    let done = store
        .commit(Txn::new(4).create_execution(e1).update_execution(e1_again))
        .await
        .unwrap();
    assert_eq!(done.executions[1].revision, 2);
}

#[tokio::test]
async fn resolve_by_id_prefix_and_name() {
    let store = SledJobStore::temporary().unwrap();
    submit(&store, "j-28c08f7f-0001", "alpha", "", 1).await;
    submit(&store, "j-28c08f7f-0002", "beta", "", 2).await;
    submit(&store, "j-99999999-0003", "j-28c08f7f", "", 3).await;
    submit(&store, "j-77777777-0004", "gamma", "team", 4).await;

    assert_eq!(
        store.resolve_job("", "j-28c08f7f-0002").await.unwrap().name,
        "beta"
    );
    assert_eq!(
        store.resolve_job("default", "j-9999").await.unwrap().id,
        "j-99999999-0003"
    );
    assert_eq!(
        store.resolve_job("", "alpha").await.unwrap().id,
        "j-28c08f7f-0001"
    );
    // A prefix shared by two IDs that is also a job's name resolves to that job.
    assert_eq!(
        store.resolve_job("", "j-28c08f7f").await.unwrap().id,
        "j-99999999-0003"
    );

    let err = store.resolve_job("", "j-28c0").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
    assert!(
        err.message.contains("j-28c08f7f-0001") && err.message.contains("j-28c08f7f-0002"),
        "{}",
        err.message
    );
    assert!(err.message.contains("ambiguous"), "{}", err.message);

    let err = store.resolve_job("", "nope").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    assert_eq!(err.message, "job not found: nope");

    // Namespaces scope resolution; `*` looks everywhere.
    assert_eq!(
        store.resolve_job("", "gamma").await.unwrap_err().code,
        ErrorCode::NotFound
    );
    assert_eq!(
        store
            .resolve_job("", "j-77777777-0004")
            .await
            .unwrap_err()
            .code,
        ErrorCode::NotFound
    );
    assert_eq!(
        store.resolve_job("team", "j-7777").await.unwrap().name,
        "gamma"
    );
    assert_eq!(
        store.resolve_job("*", "gamma").await.unwrap().id,
        "j-77777777-0004"
    );
    assert_eq!(
        store.resolve_job("", "").await.unwrap_err().code,
        ErrorCode::InvalidArgument
    );
}

#[tokio::test]
async fn pagination_covers_every_job_once_in_both_orders() {
    let store = SledJobStore::temporary().unwrap();
    // IDs deliberately not in creation order.
    let ids: Vec<String> = (0..25).map(|i| format!("j-{:02}", (i * 7) % 25)).collect();
    for (i, id) in ids.iter().enumerate() {
        submit(&store, id, id, "", 1_000 + i as i64).await;
    }

    let pages = all_pages(&store, opts(10, "", false, "")).await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![10, 10, 5]
    );
    assert_eq!(pages.concat(), ids);

    let pages = all_pages(&store, opts(10, "created_at", true, "")).await;
    let mut reversed = ids.clone();
    reversed.reverse();
    assert_eq!(pages.concat(), reversed);

    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(
        all_pages(&store, opts(7, "id", false, "")).await.concat(),
        sorted
    );
    sorted.reverse();
    assert_eq!(
        all_pages(&store, opts(7, "id", true, "")).await.concat(),
        sorted
    );

    // A page that ends exactly at the last job has no next token.
    let pages = all_pages(&store, opts(5, "", false, "")).await;
    assert_eq!(pages.len(), 5);

    // limit 0 means the default page size.
    let (jobs, token) = store
        .list_jobs(&opts(0, "", false, ""), &no_filter)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 25);
    assert!(token.is_empty());

    // The filter applies before the limit.
    let even = |job: &Job| job.id.ends_with(['0', '2', '4', '6', '8']);
    let (jobs, token) = store
        .list_jobs(&opts(4, "id", false, ""), &even)
        .await
        .unwrap();
    assert_eq!(
        jobs.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
        vec!["j-00", "j-02", "j-04", "j-06"]
    );
    let (jobs, _) = store
        .list_jobs(&opts(4, "id", false, &token), &even)
        .await
        .unwrap();
    assert_eq!(jobs[0].id, "j-08");

    // Bad parameters name themselves.
    let err = store
        .list_jobs(&opts(4, "colour", false, ""), &no_filter)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
    assert!(err.message.starts_with("order_by"), "{}", err.message);
    let err = store
        .list_jobs(&opts(4, "modified_at", false, &token), &no_filter)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
    assert!(err.message.starts_with("next_token"), "{}", err.message);
    let err = store
        .list_jobs(&opts(4, "", false, "not-hex"), &no_filter)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
}

#[tokio::test]
async fn page_tokens_stay_valid_while_jobs_are_added() {
    let store = SledJobStore::temporary().unwrap();
    for i in 0..6 {
        submit(&store, &format!("j-{i}"), &format!("n{i}"), "", 100 + i).await;
    }
    let (first, token) = store
        .list_jobs(&opts(3, "created_at", false, ""), &no_filter)
        .await
        .unwrap();
    assert_eq!(first.last().unwrap().id, "j-2");

    // One job older than the cursor (must not appear), one newer (must appear at the end).
    submit(&store, "j-old", "old", "", 50).await;
    submit(&store, "j-new", "new", "", 500).await;
    let (rest, token) = store
        .list_jobs(&opts(10, "created_at", false, &token), &no_filter)
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
        vec!["j-3", "j-4", "j-5", "j-new"]
    );
    assert!(token.is_empty());

    // Ordering by modification time follows updates.
    let mut j0 = store.get_job("j-0").await.unwrap();
    j0.state.message = "touched".to_string();
    store.commit(Txn::new(1_000).update_job(j0)).await.unwrap();
    let (jobs, _) = store
        .list_jobs(&opts(1, "modified_at", true, ""), &no_filter)
        .await
        .unwrap();
    assert_eq!(jobs[0].id, "j-0");
    let (jobs, _) = store
        .list_jobs(&opts(100, "modify_time", false, ""), &no_filter)
        .await
        .unwrap();
    assert_eq!(
        jobs.len(),
        8,
        "an update moves the job, it does not copy it"
    );
    assert_eq!(jobs.last().unwrap().id, "j-0");
}

#[tokio::test]
async fn namespaces_scope_listing() {
    let store = SledJobStore::temporary().unwrap();
    submit(&store, "j-a", "a", "", 1).await;
    submit(&store, "j-b", "b", "team", 2).await;
    submit(&store, "j-c", "c", "default", 3).await;

    let list = |namespace: &str| {
        let o = ListOptions {
            namespace: namespace.to_string(),
            ..ListOptions::default()
        };
        let store = store.clone();
        async move {
            let (jobs, _) = store.list_jobs(&o, &no_filter).await.unwrap();
            jobs.into_iter().map(|j| j.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(list("").await, vec!["j-a", "j-c"]);
    assert_eq!(list("default").await, vec!["j-a", "j-c"]);
    assert_eq!(list("team").await, vec!["j-b"]);
    assert_eq!(list("*").await, vec!["j-a", "j-b", "j-c"]);
    assert!(list("empty").await.is_empty());
}

#[tokio::test]
async fn history_filters_and_sequence_numbers() {
    let store = SledJobStore::temporary().unwrap();
    submit(&store, "j-1", "one", "", 10 * SECOND).await;
    submit(&store, "j-2", "two", "", 11 * SECOND).await;
    let txn = Txn::new(20 * SECOND)
        .append_history(exec_event("j-1", "e-1", "n-1", 20 * SECOND))
        .append_history(exec_event("j-2", "e-9", "n-1", 21 * SECOND))
        .append_history(exec_event("j-1", "e-2", "n-2", 30 * SECOND))
        .append_history(exec_event("j-1", "e-1", "n-1", 40 * SECOND));
    let done = store.commit(txn).await.unwrap();
    assert_eq!(
        done.history.iter().map(|h| h.seq_num).collect::<Vec<_>>(),
        vec![3, 4, 5, 6]
    );

    let query = |q: HistoryQuery| {
        let store = store.clone();
        async move {
            let (events, token) = store.list_history("j-1", &q).await.unwrap();
            (events.iter().map(|h| h.seq_num).collect::<Vec<_>>(), token)
        }
    };
    assert_eq!(query(HistoryQuery::default()).await.0, vec![1, 3, 5, 6]);
    let q = HistoryQuery {
        level: HistoryLevel::Job,
        ..HistoryQuery::default()
    };
    assert_eq!(query(q).await.0, vec![1]);
    let q = HistoryQuery {
        level: HistoryLevel::Execution,
        ..HistoryQuery::default()
    };
    assert_eq!(query(q).await.0, vec![3, 5, 6]);
    let q = HistoryQuery {
        since: 30,
        ..HistoryQuery::default()
    };
    assert_eq!(query(q).await.0, vec![5, 6]);
    let q = HistoryQuery {
        execution_id: "e-1".to_string(),
        ..HistoryQuery::default()
    };
    assert_eq!(query(q).await.0, vec![3, 6]);
    let q = HistoryQuery {
        node_id: "n-2".to_string(),
        ..HistoryQuery::default()
    };
    assert_eq!(query(q).await.0, vec![5]);

    // Paging.
    let q = HistoryQuery {
        limit: 2,
        ..HistoryQuery::default()
    };
    let (page, token) = query(q.clone()).await;
    assert_eq!(page, vec![1, 3]);
    let (page, token) = query(HistoryQuery {
        next_token: token,
        ..q.clone()
    })
    .await;
    assert_eq!(page, vec![5, 6]);
    assert!(token.is_empty());

    assert_eq!(
        HistoryLevel::parse("execution"),
        Some(HistoryLevel::Execution)
    );
    assert_eq!(HistoryLevel::parse("bogus"), None);
    let err = store
        .list_history(
            "j-1",
            &HistoryQuery {
                next_token: "zz".to_string(),
                ..HistoryQuery::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
}

#[tokio::test]
async fn executions_are_listed_by_job_node_and_activity() {
    let store = SledJobStore::temporary().unwrap();
    submit(&store, "j-1", "one", "", 1).await;
    let txn = Txn::new(10)
        .create_execution(execution("e-b", "j-1", "n-1", 1))
        .create_execution(execution("e-a", "j-1", "n-2", 2));
    store.commit(txn).await.unwrap();
    let mut later = execution("e-c", "j-2", "n-1", 1);
    later.create_time = 20;
    store
        .commit(Txn::new(20).create_execution(later))
        .await
        .unwrap();

    let ids = |v: Vec<Execution>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_executions_by_job("j-1", None).await.unwrap()),
        vec!["e-a", "e-b"]
    );
    assert_eq!(
        ids(store.list_executions_by_job("j-1", Some(2)).await.unwrap()),
        vec!["e-a"]
    );
    assert_eq!(
        ids(store.list_executions_by_node("n-1").await.unwrap()),
        vec!["e-b", "e-c"]
    );
    assert_eq!(
        ids(store.list_active_executions().await.unwrap()),
        vec!["e-a", "e-b", "e-c"]
    );

    // Finishing an execution removes it from the active set; moving it updates the node index.
    let mut done = store.get_execution("e-b").await.unwrap();
    assert_eq!(done.revision, 1);
    done.compute_state = State::new(ExecutionStateType::Completed, "done");
    done.node_id = "n-3".to_string();
    let stored = store
        .commit(Txn::new(30).update_execution(done))
        .await
        .unwrap();
    assert_eq!(stored.executions[0].revision, 2);
    assert_eq!(stored.executions[0].create_time, 10);
    assert_eq!(stored.executions[0].modify_time, 30);
    assert_eq!(
        ids(store.list_active_executions().await.unwrap()),
        vec!["e-a", "e-c"]
    );
    assert_eq!(
        ids(store.list_executions_by_node("n-1").await.unwrap()),
        vec!["e-c"]
    );
    assert_eq!(
        ids(store.list_executions_by_node("n-3").await.unwrap()),
        vec!["e-b"]
    );
    assert_eq!(
        ids(store.list_executions_by_job("j-1", None).await.unwrap()),
        vec!["e-a", "e-b"]
    );
}

#[tokio::test]
async fn nodes_and_evaluations_can_be_stored_and_deleted() {
    let store: Arc<dyn JobStore> = Arc::new(SledJobStore::temporary().unwrap());
    store.put_node(node("n-2")).await.unwrap();
    store.put_node(node("n-1")).await.unwrap();
    let mut updated = node("n-1");
    updated.membership = "REJECTED".to_string();
    store.put_node(updated.clone()).await.unwrap();
    assert_eq!(store.get_node("n-1").await.unwrap(), updated);
    let ids: Vec<String> = store
        .list_nodes()
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.info.node_id)
        .collect();
    assert_eq!(ids, vec!["n-1", "n-2"]);
    store.delete_node("n-1").await.unwrap();
    store.delete_node("n-1").await.unwrap();
    assert_eq!(
        store.get_node("n-1").await.unwrap_err().code,
        ErrorCode::NotFound
    );
    assert_eq!(
        store.put_node(node("")).await.unwrap_err().code,
        ErrorCode::InvalidArgument
    );

    store
        .commit(
            Txn::new(1)
                .put_evaluation(eval("v-1", "j-1"))
                .put_evaluation(eval("v-2", "j-1")),
        )
        .await
        .unwrap();
    store.delete_evaluation("v-1").await.unwrap();
    let left: Vec<String> = store
        .list_evaluations()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(left, vec!["v-2"]);
}

#[tokio::test]
async fn reopening_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        let store = SledJobStore::open(&path).unwrap();
        submit(&store, "j-1", "web", "", 1).await;
        let txn = Txn::new(2)
            .create_execution(execution("e-1", "j-1", "n-1", 1))
            .put_node(node("n-1"))
            .append_history(exec_event("j-1", "e-1", "n-1", 2));
        store.commit(txn).await.unwrap();
    }
    let store = SledJobStore::open(&path).unwrap();
    assert_eq!(store.get_job("j-1").await.unwrap().revision, 1);
    assert_eq!(store.resolve_job("", "web").await.unwrap().id, "j-1");
    assert_eq!(store.get_evaluation("v-j-1").await.unwrap().job_id, "j-1");
    assert_eq!(store.list_active_executions().await.unwrap().len(), 1);
    assert_eq!(store.list_nodes().await.unwrap().len(), 1);
    let (jobs, _) = store
        .list_jobs(&ListOptions::default(), &no_filter)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1);

    // The history sequence continues where it stopped.
    let done = store
        .commit(Txn::new(3).append_history(exec_event("j-1", "e-1", "n-1", 3)))
        .await
        .unwrap();
    assert_eq!(done.history[0].seq_num, 3);
}

#[tokio::test]
async fn change_feed_reports_each_durable_write() {
    let store = SledJobStore::temporary().unwrap();
    let mut feed = store.subscribe();
    submit(&store, "j-1", "web", "", 1).await;

    let first = feed.recv().await.unwrap();
    assert_eq!(first.kind, ChangeKind::Job);
    assert_eq!((first.id.as_str(), first.revision), ("j-1", 1));
    let second = feed.recv().await.unwrap();
    assert_eq!(second.kind, ChangeKind::Evaluation);
    assert_eq!(
        (second.id.as_str(), second.job_id.as_str()),
        ("v-j-1", "j-1")
    );
    let third = feed.recv().await.unwrap();
    assert_eq!(third.kind, ChangeKind::History);
    assert_eq!(third.job_id, "j-1");

    // What the feed announced is readable.
    let mut current = store.get_job(&first.id).await.unwrap();
    assert_eq!(current.revision, first.revision);
    current.state.message = "again".to_string();
    store
        .commit(Txn::new(2).update_job(current).delete_evaluation("v-j-1"))
        .await
        .unwrap();
    let update = feed.recv().await.unwrap();
    assert_eq!((update.kind, update.revision), (ChangeKind::Job, 2));
    let delete = feed.recv().await.unwrap();
    assert_eq!(delete.kind, ChangeKind::Evaluation);
    assert!(delete.deleted);
    assert!(feed.try_recv().is_err());
}

#[tokio::test]
async fn damaged_or_future_records_are_errors() {
    // Plant records the store did not write, through sled itself, then open the store over them.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        let db = sled::open(&path).unwrap();
        let jobs = db.open_tree("jobs").unwrap();
        jobs.insert(b"j-future", &br#"{"v":2,"data":{"whatever":true}}"#[..])
            .unwrap();
        jobs.insert(b"j-garbage", &b"\x00\x01 not json"[..])
            .unwrap();
        jobs.insert(b"j-wrongshape", &br#"{"v":1,"data":{"Revision":"x"}}"#[..])
            .unwrap();
        db.flush().unwrap();
    }
    let store = SledJobStore::open(&path).unwrap();

    let err = store.get_job("j-future").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Internal);
    assert!(
        err.message.contains("unsupported format version 2"),
        "{}",
        err.message
    );
    assert!(err.message.contains("j-future"), "{}", err.message);
    let err = store.get_job("j-garbage").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Internal);
    assert!(err.message.contains("cannot decode"), "{}", err.message);
    let err = store.get_job("j-wrongshape").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Internal);

    // Scans that meet a damaged record fail cleanly instead of guessing.
    assert_eq!(
        store.resolve_job("", "j-").await.unwrap_err().code,
        ErrorCode::Internal
    );

    // Writing over a damaged record fails cleanly, too.
    let err = store
        .commit(Txn::new(1).create_job(job("j-future", "f", "")))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Internal);
}

#[tokio::test]
async fn bad_keys_are_invalid_arguments() {
    let store = SledJobStore::temporary().unwrap();
    let err = store
        .commit(Txn::new(1).create_job(job("", "x", "")))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
    assert!(err.message.contains("job ID"), "{}", err.message);
    let err = store
        .commit(Txn::new(1).create_job(job("j-1", "x", "bad\0ns")))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
    assert!(err.message.contains("namespace"), "{}", err.message);
    let err = store
        .commit(Txn::new(1).create_execution(execution("e-1", "", "n-1", 1)))
        .await
        .unwrap_err();
    assert!(err.message.contains("JobID"), "{}", err.message);
}

#[tokio::test]
async fn concurrent_commits_are_serialised() {
    let store = Arc::new(SledJobStore::temporary().unwrap());
    submit(store.as_ref(), "j-1", "web", "", 1).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let event = exec_event("j-1", &format!("e-{i}"), "n-1", 2);
            store
                .commit(Txn::new(2).append_history(event))
                .await
                .unwrap()
                .history[0]
                .seq_num
        }));
    }
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (2..10).collect::<Vec<u64>>());
}

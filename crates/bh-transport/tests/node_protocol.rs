//! The node protocol over loopback gRPC: an in-test NodeHub and ComputeAgent exchange every message kind,
//! a refused handshake, and a reconnection after the orchestrator restarts.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bh_models::{
    Error, ErrorCode, Execution, FromCompute, NodeInfo, Result, RunCommandResult, SpecConfig,
    ToCompute,
};
use bh_transport::service::{ComputeAgent, NodeHub};
use bh_transport::{connect_once, run_compute_client, serve_grpc, ClientOptions, SessionState};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

// Size does not matter for a handful of test events.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
enum HubEvent {
    Connected(NodeInfo),
    Refused(String),
    Message(String, FromCompute),
    Disconnected(String),
}

/// An orchestrator-side hub for tests: reports everything on a channel and lets the test talk to nodes.
struct TestHub {
    events: mpsc::UnboundedSender<HubEvent>,
    to_nodes: Mutex<HashMap<String, mpsc::Sender<ToCompute>>>,
    rejected: Vec<String>,
}

impl TestHub {
    fn new(rejected: &[&str]) -> (Arc<Self>, mpsc::UnboundedReceiver<HubEvent>) {
        let (events, rx) = mpsc::unbounded_channel();
        let hub = Self {
            events,
            to_nodes: Mutex::new(HashMap::new()),
            rejected: rejected.iter().map(|s| s.to_string()).collect(),
        };
        (Arc::new(hub), rx)
    }

    fn sender(&self, node_id: &str) -> mpsc::Sender<ToCompute> {
        self.to_nodes.lock().unwrap()[node_id].clone()
    }
}

#[async_trait]
impl NodeHub for TestHub {
    async fn connect(&self, info: NodeInfo) -> Result<mpsc::Receiver<ToCompute>> {
        if self.rejected.contains(&info.node_id) {
            let _ = self.events.send(HubEvent::Refused(info.node_id.clone()));
            return Err(Error::new(
                ErrorCode::Forbidden,
                format!("node {} is REJECTED", info.node_id),
            ));
        }
        let (tx, rx) = mpsc::channel(16);
        self.to_nodes
            .lock()
            .unwrap()
            .insert(info.node_id.clone(), tx);
        let _ = self.events.send(HubEvent::Connected(info));
        Ok(rx)
    }
    async fn on_message(&self, node_id: &str, msg: FromCompute) {
        let _ = self
            .events
            .send(HubEvent::Message(node_id.to_string(), msg));
    }
    async fn disconnected(&self, node_id: &str) {
        let _ = self
            .events
            .send(HubEvent::Disconnected(node_id.to_string()));
    }
}

#[derive(Debug, Clone, PartialEq)]
enum AgentEvent {
    Connected,
    Handled(ToCompute),
}

/// A compute-side agent for tests: reports what it gets on a channel; the test feeds its outbound queue.
struct TestAgent {
    info: NodeInfo,
    events: mpsc::UnboundedSender<AgentEvent>,
    outbound: tokio::sync::Mutex<mpsc::Receiver<FromCompute>>,
}

fn test_agent(
    node_id: &str,
) -> (
    Arc<TestAgent>,
    mpsc::UnboundedReceiver<AgentEvent>,
    mpsc::Sender<FromCompute>,
) {
    let (events, events_rx) = mpsc::unbounded_channel();
    let (out_tx, out_rx) = mpsc::channel(16);
    let info = NodeInfo {
        node_id: node_id.into(),
        node_type: "Compute".into(),
        ..Default::default()
    };
    (
        Arc::new(TestAgent {
            info,
            events,
            outbound: tokio::sync::Mutex::new(out_rx),
        }),
        events_rx,
        out_tx,
    )
}

#[async_trait]
impl ComputeAgent for TestAgent {
    fn node_info(&self) -> NodeInfo {
        self.info.clone()
    }
    async fn on_connected(&self) {
        let _ = self.events.send(AgentEvent::Connected);
    }
    async fn handle(&self, msg: ToCompute) {
        let _ = self.events.send(AgentEvent::Handled(msg));
    }
    async fn next_outbound(&self) -> Option<FromCompute> {
        self.outbound.lock().await.recv().await
    }
}

struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<()>>,
}

async fn start_server(hub: Arc<TestHub>, addr: &str) -> Server {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_grpc(listener, hub, async move {
        let _ = stopped.await;
    }));
    Server { addr, stop, task }
}

impl Server {
    async fn shut_down(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

fn fast_options() -> ClientOptions {
    ClientOptions {
        // Only the immediate first beat fires during a test.
        heartbeat_interval: Duration::from_secs(3600),
        reconnect_backoff_initial: Duration::from_millis(5),
        reconnect_backoff_max: Duration::from_millis(50),
        connect_timeout: Duration::from_secs(5),
    }
}

/// The next hub event that is not the periodic Heartbeat/UpdateNodeInfo pair the client sends by itself.
async fn next_hub_event(
    events: &mut mpsc::UnboundedReceiver<HubEvent>,
    periodic_info: &NodeInfo,
) -> HubEvent {
    loop {
        let event = events.recv().await.expect("hub events ended");
        match &event {
            HubEvent::Message(_, FromCompute::Heartbeat { .. }) => continue,
            HubEvent::Message(_, FromCompute::UpdateNodeInfo { info })
                if **info == *periodic_info =>
            {
                continue
            }
            _ => return event,
        }
    }
}

#[tokio::test]
async fn every_message_kind_flows_both_ways() {
    let (hub, mut hub_events) = TestHub::new(&[]);
    let server = start_server(hub.clone(), "127.0.0.1:0").await;
    let (agent, mut agent_events, agent_out) = test_agent("n-1");
    let shutdown = CancellationToken::new();
    let client = tokio::spawn(run_compute_client(
        vec![server.addr.to_string()],
        agent.clone(),
        fast_options(),
        shutdown.clone(),
    ));

    assert_eq!(
        hub_events.recv().await,
        Some(HubEvent::Connected(agent.info.clone()))
    );
    assert_eq!(agent_events.recv().await, Some(AgentEvent::Connected));

    // The first heartbeat goes out at once, with the node's info.
    loop {
        match hub_events.recv().await.unwrap() {
            HubEvent::Message(node, FromCompute::Heartbeat { seq }) => {
                assert_eq!((node.as_str(), seq), ("n-1", 1));
                break;
            }
            HubEvent::Message(_, FromCompute::UpdateNodeInfo { info }) => {
                assert_eq!(*info, agent.info)
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    let mut execution = Execution {
        id: "e-1".into(),
        job_id: "j-1".into(),
        node_id: "n-1".into(),
        ..Default::default()
    };
    execution.job = Some(bh_models::Job {
        id: "j-1".into(),
        ..Default::default()
    });
    let to_compute = vec![
        ToCompute::AskForBid {
            execution: Box::new(execution),
            pre_approved: false,
        },
        ToCompute::BidAccepted {
            execution_id: "e-1".into(),
        },
        ToCompute::BidRejected {
            execution_id: "e-2".into(),
            reason: "lost".into(),
        },
        ToCompute::Cancel {
            execution_id: "e-1".into(),
            reason: "stopped".into(),
        },
    ];
    let to_node = hub.sender("n-1");
    for msg in &to_compute {
        to_node.send(msg.clone()).await.unwrap();
    }
    for msg in &to_compute {
        assert_eq!(
            agent_events.recv().await,
            Some(AgentEvent::Handled(msg.clone()))
        );
    }

    let mut newer_info = agent.info.clone();
    newer_info.labels.insert("gpu".into(), "none".into());
    let from_compute = vec![
        FromCompute::BidResult {
            execution_id: "e-1".into(),
            accepted: true,
            reason: String::new(),
        },
        FromCompute::ExecutionStarted {
            execution_id: "e-1".into(),
        },
        FromCompute::RunResult {
            execution_id: "e-1".into(),
            output: RunCommandResult {
                stdout: "hi\n".into(),
                exit_code: 0,
                ..Default::default()
            },
            published_result: Some(
                SpecConfig::new("local").with_param("URL", "http://n-1/e-1.tgz"),
            ),
        },
        FromCompute::ComputeError {
            execution_id: "e-3".into(),
            message: "timed out".into(),
            output: None,
        },
        FromCompute::UpdateNodeInfo {
            info: Box::new(newer_info),
        },
        FromCompute::Heartbeat { seq: 1000 },
    ];
    for msg in &from_compute {
        agent_out.send(msg.clone()).await.unwrap();
    }
    for msg in &from_compute[..5] {
        assert_eq!(
            next_hub_event(&mut hub_events, &agent.info).await,
            HubEvent::Message("n-1".into(), msg.clone())
        );
    }
    loop {
        if let Some(HubEvent::Message(_, FromCompute::Heartbeat { seq: 1000 })) =
            hub_events.recv().await
        {
            break;
        }
    }

    shutdown.cancel();
    client.await.unwrap().unwrap();
    assert_eq!(
        next_hub_event(&mut hub_events, &agent.info).await,
        HubEvent::Disconnected("n-1".into())
    );
    server.shut_down().await;
}

#[tokio::test]
async fn the_hub_ending_a_connection_closes_the_stream() {
    let (hub, mut hub_events) = TestHub::new(&[]);
    let server = start_server(hub.clone(), "127.0.0.1:0").await;
    let (agent, mut agent_events, _agent_out) = test_agent("n-1");
    let agent: Arc<dyn ComputeAgent> = agent;
    let state = SessionState::default();
    let shutdown = CancellationToken::new();
    let session = {
        let addr = server.addr.to_string();
        let agent = agent.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            connect_once(&addr, &agent, &fast_options(), &state, &shutdown).await
        })
    };
    assert!(matches!(
        hub_events.recv().await,
        Some(HubEvent::Connected(_))
    ));
    assert_eq!(agent_events.recv().await, Some(AgentEvent::Connected));
    // The hub drops its sender: the orchestrator ends the connection.
    hub.to_nodes.lock().unwrap().clear();
    let end = session.await.unwrap().unwrap();
    assert!(
        matches!(end, bh_transport::SessionEnd::Disconnected(_)),
        "{end:?}"
    );
    assert_eq!(
        next_hub_event(&mut hub_events, &agent.node_info()).await,
        HubEvent::Disconnected("n-1".into())
    );
    server.shut_down().await;
}

#[tokio::test]
async fn a_refused_handshake_carries_the_reason_and_is_retried() {
    let (hub, mut hub_events) = TestHub::new(&["n-bad"]);
    let server = start_server(hub.clone(), "127.0.0.1:0").await;
    let (agent, mut agent_events, _agent_out) = test_agent("n-bad");
    let agent: Arc<dyn ComputeAgent> = agent;

    let err = connect_once(
        &server.addr.to_string(),
        &agent,
        &fast_options(),
        &SessionState::default(),
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);
    assert!(
        err.message.contains("node n-bad is REJECTED"),
        "{}",
        err.message
    );
    assert_eq!(
        hub_events.recv().await,
        Some(HubEvent::Refused("n-bad".into()))
    );
    assert_eq!(
        hub_events.recv().await,
        Some(HubEvent::Disconnected("n-bad".into()))
    );

    // The long-running client keeps trying with backoff and never calls on_connected.
    let shutdown = CancellationToken::new();
    let client = tokio::spawn(run_compute_client(
        vec![server.addr.to_string()],
        agent.clone(),
        fast_options(),
        shutdown.clone(),
    ));
    for _ in 0..2 {
        assert_eq!(
            hub_events.recv().await,
            Some(HubEvent::Refused("n-bad".into()))
        );
        assert_eq!(
            hub_events.recv().await,
            Some(HubEvent::Disconnected("n-bad".into()))
        );
    }
    shutdown.cancel();
    client.await.unwrap().unwrap();
    assert!(
        agent_events.try_recv().is_err(),
        "a refused node never connects"
    );
    server.shut_down().await;
}

#[tokio::test]
async fn the_client_reconnects_after_the_orchestrator_restarts() {
    let (hub, mut hub_events) = TestHub::new(&[]);
    let server = start_server(hub.clone(), "127.0.0.1:0").await;
    let addr = server.addr;
    let (agent, mut agent_events, agent_out) = test_agent("n-1");
    let shutdown = CancellationToken::new();
    let client = tokio::spawn(run_compute_client(
        vec![addr.to_string()],
        agent.clone(),
        fast_options(),
        shutdown.clone(),
    ));
    assert!(matches!(
        hub_events.recv().await,
        Some(HubEvent::Connected(_))
    ));
    assert_eq!(agent_events.recv().await, Some(AgentEvent::Connected));

    // Shutting the server down ends the node's stream, so graceful shutdown completes.
    server.shut_down().await;
    assert_eq!(
        next_hub_event(&mut hub_events, &agent.info).await,
        HubEvent::Disconnected("n-1".into())
    );

    // A new orchestrator on the same address: the client dials again and handshakes.
    let (hub2, mut hub2_events) = TestHub::new(&[]);
    let server2 = start_server(hub2.clone(), &addr.to_string()).await;
    assert_eq!(
        hub2_events.recv().await,
        Some(HubEvent::Connected(agent.info.clone()))
    );
    assert_eq!(agent_events.recv().await, Some(AgentEvent::Connected));

    // Messages flow on the new session, both ways; heartbeat numbers keep counting.
    let started = FromCompute::ExecutionStarted {
        execution_id: "e-9".into(),
    };
    agent_out.send(started.clone()).await.unwrap();
    let mut seqs = Vec::new();
    loop {
        match hub2_events.recv().await.unwrap() {
            HubEvent::Message(_, FromCompute::Heartbeat { seq }) => seqs.push(seq),
            HubEvent::Message(_, FromCompute::UpdateNodeInfo { .. }) => {}
            HubEvent::Message(_, msg) => {
                assert_eq!(msg, started);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let cancel = ToCompute::Cancel {
        execution_id: "e-9".into(),
        reason: "r".into(),
    };
    hub2.sender("n-1").send(cancel.clone()).await.unwrap();
    assert_eq!(agent_events.recv().await, Some(AgentEvent::Handled(cancel)));
    assert!(seqs.iter().all(|s| *s >= 2), "{seqs:?}");

    shutdown.cancel();
    client.await.unwrap().unwrap();
    server2.shut_down().await;
}

#[tokio::test]
async fn an_empty_orchestrator_list_is_an_error() {
    let (agent, _events, _out) = test_agent("n-1");
    let err = run_compute_client(Vec::new(), agent, fast_options(), CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
}

//! The node protocol over gRPC: the orchestrator's server ([`serve_grpc`], driving a [`NodeHub`]) and the
//! compute node's reconnecting client ([`run_compute_client`], driving a [`ComputeAgent`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bh_models::{Error, ErrorCode, FromCompute, Result};
use futures::{Stream, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};

use crate::convert::{
    compute_message_from_proto, from_compute_to_proto, handshake_ack_message, handshake_message,
    orchestrator_message_from_proto, to_compute_to_proto, InboundCompute, InboundOrchestrator,
};
use crate::proto;
use crate::proto::node_service_client::NodeServiceClient;
use crate::proto::node_service_server::{NodeService, NodeServiceServer};
use crate::service::{ComputeAgent, NodeHub};

/// Messages buffered per direction and connection before the sender waits.
const STREAM_BUFFER: usize = 64;
/// How long the server waits for a new stream's Handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// HTTP/2 pings on both sides, so that a peer that vanished without closing its socket is noticed.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------------------
// Server

/// Serves the node protocol on `listener` until `shutdown` completes, handing every node's stream to `hub`.
///
/// Per stream: the first message must be a Handshake; `hub.connect` decides. A refusal is answered with
/// `HandshakeAck{accepted:false, reason}` and the stream closes; otherwise the ack is followed by the hub's
/// messages, the node's messages go to `hub.on_message`, and `hub.disconnected` is called when the stream ends
/// for any reason (including shutdown, which ends every stream so that the server can stop).
pub async fn serve_grpc(
    listener: TcpListener,
    hub: Arc<dyn NodeHub>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let stopping = CancellationToken::new();
    let trigger = stopping.clone();
    let signal = tokio::spawn(async move {
        shutdown.await;
        trigger.cancel();
    });
    let service = NodeServiceImpl {
        hub,
        stopping: stopping.clone(),
    };
    let served = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .add_service(NodeServiceServer::new(service))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), stopping.cancelled_owned())
        .await;
    signal.abort();
    served.map_err(|e| Error::unavailable(format!("gRPC server failed: {e}")))
}

struct NodeServiceImpl {
    hub: Arc<dyn NodeHub>,
    stopping: CancellationToken,
}

type OutboundStream =
    Pin<Box<dyn Stream<Item = Result<proto::OrchestratorMessage, Status>> + Send>>;

#[tonic::async_trait]
impl NodeService for NodeServiceImpl {
    type ConnectStream = OutboundStream;

    async fn connect(
        &self,
        request: Request<Streaming<proto::ComputeMessage>>,
    ) -> std::result::Result<Response<Self::ConnectStream>, Status> {
        let mut inbound = request.into_inner();
        let first = tokio::time::timeout(HANDSHAKE_TIMEOUT, inbound.message())
            .await
            .map_err(|_| Status::deadline_exceeded("no handshake received in time"))??
            .ok_or_else(|| Status::invalid_argument("stream ended before the handshake"))?;
        let info = match compute_message_from_proto(first) {
            Ok(InboundCompute::Handshake(info)) => *info,
            Ok(InboundCompute::Message(_)) => {
                return Err(Status::invalid_argument(
                    "the first message must be a Handshake",
                ))
            }
            Err(e) => return Err(crate::errors::to_status(&e)),
        };
        let node_id = info.node_id.clone();
        if node_id.is_empty() {
            return Err(Status::invalid_argument("Handshake.info.node_id: empty"));
        }

        let hub_rx = match self.hub.connect(info).await {
            Ok(rx) => rx,
            Err(refusal) => {
                tracing::info!(node_id, reason = %refusal.message, "refused node handshake");
                self.hub.disconnected(&node_id).await;
                let ack = handshake_ack_message(false, &refusal.message);
                let once: OutboundStream = Box::pin(futures::stream::iter([Ok(ack)]));
                return Ok(Response::new(once));
            }
        };

        let (out_tx, out_rx) = mpsc::channel(STREAM_BUFFER);
        // The channel is fresh and has room, so the ack is queued first, before any hub message.
        if out_tx
            .try_send(Ok(handshake_ack_message(true, "")))
            .is_err()
        {
            self.hub.disconnected(&node_id).await;
            return Err(Status::internal("cannot queue the handshake answer"));
        }
        tracing::info!(node_id, "node connected");
        tokio::spawn(pump_node_stream(
            self.hub.clone(),
            node_id,
            inbound,
            hub_rx,
            out_tx,
            self.stopping.clone(),
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(out_rx))))
    }
}

/// Moves messages between one node's stream and the hub until either side ends, then tells the hub.
async fn pump_node_stream(
    hub: Arc<dyn NodeHub>,
    node_id: String,
    mut inbound: Streaming<proto::ComputeMessage>,
    mut hub_rx: mpsc::Receiver<bh_models::ToCompute>,
    out_tx: mpsc::Sender<std::result::Result<proto::OrchestratorMessage, Status>>,
    stopping: CancellationToken,
) {
    let why = loop {
        tokio::select! {
            _ = stopping.cancelled() => break "server shutting down".to_string(),
            _ = out_tx.closed() => break "node closed the stream".to_string(),
            to_node = hub_rx.recv() => match to_node {
                None => break "orchestrator ended the connection".to_string(),
                Some(msg) => match to_compute_to_proto(&msg) {
                    Ok(encoded) => {
                        if out_tx.send(Ok(encoded)).await.is_err() {
                            break "node closed the stream".to_string();
                        }
                    }
                    Err(e) => {
                        tracing::error!(node_id, error = %e, "cannot encode message to node; dropped")
                    }
                },
            },
            from_node = inbound.next() => match from_node {
                None => break "node closed the stream".to_string(),
                Some(Err(status)) => break format!("stream error: {}", status.message()),
                Some(Ok(msg)) => match compute_message_from_proto(msg) {
                    Ok(InboundCompute::Message(msg)) => hub.on_message(&node_id, msg).await,
                    // A repeated handshake carries fresher node info; treat it as an update.
                    Ok(InboundCompute::Handshake(info)) => {
                        hub.on_message(&node_id, FromCompute::UpdateNodeInfo { info }).await
                    }
                    Err(e) => {
                        tracing::warn!(node_id, error = %e, "malformed message from node; ignored")
                    }
                },
            },
        }
    };
    tracing::info!(node_id, reason = %why, "node disconnected");
    // Dropping the sender ends the answer stream.
    drop(out_tx);
    hub.disconnected(&node_id).await;
}

// ---------------------------------------------------------------------------------------------------------
// Client

/// How the compute node's client behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// Time between heartbeats (each also carries an UpdateNodeInfo). Upstream uses 15 s.
    pub heartbeat_interval: Duration,
    /// Wait before the first reconnection attempt; doubled after each failure.
    pub reconnect_backoff_initial: Duration,
    /// Longest wait between reconnection attempts.
    pub reconnect_backoff_max: Duration,
    /// How long one dial may take.
    pub connect_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(15),
            reconnect_backoff_initial: Duration::from_millis(250),
            reconnect_backoff_max: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a connected session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// The shutdown token was cancelled.
    Shutdown,
    /// The agent's `next_outbound` returned `None`: the node is shutting down.
    AgentDone,
    /// The stream broke or the orchestrator closed it; the reason is for logs.
    Disconnected(String),
}

/// Client state that outlives one connection.
#[derive(Debug, Default)]
pub struct SessionState {
    /// Heartbeat sequence numbers keep counting across reconnections.
    heartbeat_seq: AtomicU64,
    /// A message taken from the agent whose send failed; sent first on the next connection.
    carry_over: std::sync::Mutex<Option<FromCompute>>,
}

impl SessionState {
    fn take_carry_over(&self) -> Option<FromCompute> {
        self.carry_over.lock().ok().and_then(|mut slot| slot.take())
    }

    fn keep_for_next_session(&self, msg: FromCompute) {
        if let Ok(mut slot) = self.carry_over.lock() {
            *slot = Some(msg);
        }
    }
}

/// Runs the compute node's side of the protocol until `shutdown` is cancelled or the agent has nothing more
/// to send: dials the orchestrators round-robin, handshakes, and keeps one session going, reconnecting with
/// capped exponential backoff after a failure or a refused handshake. Never panics on network trouble.
///
/// Errors only for an empty orchestrator list.
pub async fn run_compute_client(
    orchestrators: Vec<String>,
    agent: Arc<dyn ComputeAgent>,
    opts: ClientOptions,
    shutdown: CancellationToken,
) -> Result<()> {
    if orchestrators.is_empty() {
        return Err(Error::invalid(
            "orchestrators: at least one address is required",
        ));
    }
    let state = SessionState::default();
    let mut backoff = opts.reconnect_backoff_initial;
    let mut next = 0usize;
    loop {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        let addr = &orchestrators[next % orchestrators.len()];
        next = next.wrapping_add(1);
        match connect_once(addr, &agent, &opts, &state, &shutdown).await {
            Ok(SessionEnd::Shutdown) | Ok(SessionEnd::AgentDone) => return Ok(()),
            Ok(SessionEnd::Disconnected(why)) => {
                tracing::warn!(orchestrator = %addr, reason = %why, "lost connection to orchestrator; reconnecting");
                // The session was up, so the orchestrator is reachable: start the backoff over.
                backoff = opts.reconnect_backoff_initial;
            }
            Err(e) => {
                tracing::warn!(
                    orchestrator = %addr,
                    error = %e,
                    retry_in_ms = backoff.as_millis() as u64,
                    "cannot connect to orchestrator"
                );
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(opts.reconnect_backoff_max);
    }
}

/// One session: dial `addr` (`host:port` or a URL), handshake with the agent's node info, then exchange
/// messages until the stream ends, the agent is done, or `shutdown` is cancelled.
///
/// Errors: `Unavailable` when the orchestrator cannot be reached or closed the stream during the handshake;
/// `Forbidden` when it refused the node (the message carries its reason).
pub async fn connect_once(
    addr: &str,
    agent: &Arc<dyn ComputeAgent>,
    opts: &ClientOptions,
    state: &SessionState,
    shutdown: &CancellationToken,
) -> Result<SessionEnd> {
    let url = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    let endpoint = tonic::transport::Endpoint::from_shared(url.clone())
        .map_err(|e| Error::invalid(format!("orchestrator address '{addr}': {e}")))?
        .connect_timeout(opts.connect_timeout)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true);
    let channel = tokio::select! {
        _ = shutdown.cancelled() => return Ok(SessionEnd::Shutdown),
        dialled = endpoint.connect() => dialled.map_err(|e| {
            Error::unavailable(format!("cannot reach orchestrator at {url}: {}", crate::errors::error_chain(&e)))
        })?,
    };
    let mut client = NodeServiceClient::new(channel);

    let (out_tx, out_rx) = mpsc::channel::<proto::ComputeMessage>(STREAM_BUFFER);
    out_tx
        .try_send(handshake_message(&agent.node_info()))
        .map_err(|_| Error::internal("cannot queue the handshake"))?;
    let mut inbound = tokio::select! {
        _ = shutdown.cancelled() => return Ok(SessionEnd::Shutdown),
        answer = client.connect(ReceiverStream::new(out_rx)) => answer
            .map_err(|s| {
                Error::unavailable(format!("orchestrator at {url} refused the stream: {}", s.message()))
            })?
            .into_inner(),
    };
    let ack = tokio::select! {
        _ = shutdown.cancelled() => return Ok(SessionEnd::Shutdown),
        ack = inbound.next() => ack,
    };
    match ack {
        Some(Ok(msg)) => match orchestrator_message_from_proto(msg) {
            Ok(InboundOrchestrator::HandshakeAck { accepted: true, .. }) => {}
            Ok(InboundOrchestrator::HandshakeAck {
                accepted: false,
                reason,
            }) => {
                return Err(Error::new(
                    ErrorCode::Forbidden,
                    format!("orchestrator at {url} refused the node: {reason}"),
                ))
            }
            Ok(InboundOrchestrator::Message(_)) => {
                return Err(Error::unavailable(format!(
                    "orchestrator at {url} sent a message before the handshake answer"
                )))
            }
            Err(e) => return Err(e),
        },
        Some(Err(status)) => {
            return Err(Error::unavailable(format!(
                "orchestrator at {url} failed the handshake: {}",
                status.message()
            )))
        }
        None => {
            return Err(Error::unavailable(format!(
                "orchestrator at {url} closed the stream during the handshake"
            )))
        }
    }
    tracing::info!(orchestrator = %url, "connected to orchestrator");
    agent.on_connected().await;
    run_session(agent, opts, state, shutdown, &out_tx, &mut inbound).await
}

/// The message exchange of a connected session.
async fn run_session(
    agent: &Arc<dyn ComputeAgent>,
    opts: &ClientOptions,
    state: &SessionState,
    shutdown: &CancellationToken,
    out_tx: &mpsc::Sender<proto::ComputeMessage>,
    inbound: &mut Streaming<proto::OrchestratorMessage>,
) -> Result<SessionEnd> {
    if let Some(pending) = state.take_carry_over() {
        if out_tx.send(from_compute_to_proto(&pending)).await.is_err() {
            state.keep_for_next_session(pending);
            return Ok(SessionEnd::Disconnected("stream closed".to_string()));
        }
    }
    let mut heartbeat =
        tokio::time::interval(opts.heartbeat_interval.max(Duration::from_millis(1)));
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The agent's next message is awaited by one future kept across loop turns, so that a message is never
    // taken from the agent and then dropped because another branch won the race.
    let mut outbound = agent.next_outbound();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(SessionEnd::Shutdown),
            _ = heartbeat.tick() => {
                let seq = state.heartbeat_seq.fetch_add(1, Ordering::Relaxed) + 1;
                let beat = from_compute_to_proto(&FromCompute::Heartbeat { seq });
                let info = Box::new(agent.node_info());
                let update = from_compute_to_proto(&FromCompute::UpdateNodeInfo { info });
                if out_tx.send(beat).await.is_err() || out_tx.send(update).await.is_err() {
                    return Ok(SessionEnd::Disconnected("stream closed".to_string()));
                }
            }
            msg = &mut outbound => {
                let Some(msg) = msg else { return Ok(SessionEnd::AgentDone) };
                if out_tx.send(from_compute_to_proto(&msg)).await.is_err() {
                    state.keep_for_next_session(msg);
                    return Ok(SessionEnd::Disconnected("stream closed".to_string()));
                }
                outbound = agent.next_outbound();
            }
            from_orchestrator = inbound.next() => match from_orchestrator {
                None => {
                    return Ok(SessionEnd::Disconnected("orchestrator closed the stream".to_string()))
                }
                Some(Err(status)) => {
                    return Ok(SessionEnd::Disconnected(format!("stream error: {}", status.message())))
                }
                Some(Ok(msg)) => match orchestrator_message_from_proto(msg) {
                    Ok(InboundOrchestrator::Message(msg)) => agent.handle(msg).await,
                    Ok(InboundOrchestrator::HandshakeAck { .. }) => {
                        tracing::debug!("repeated handshake answer ignored");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "malformed message from orchestrator; ignored")
                    }
                },
            },
        }
    }
}

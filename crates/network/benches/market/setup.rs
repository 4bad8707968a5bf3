//! The network under test and its actors: the shared test network
//! (`provernet_network::test_utils`) on the server runtime, faucet-funded accounts with
//! client-side nonces (so that signing is apart from the timed loop), provers, and the fib
//! program with its inputs.

use std::sync::Arc;

use provernet_network::{
    service::NetworkState,
    test_utils::{self, Engine, Options, TestNetwork, postgres},
};
use provernet_types::{
    Domain, RequestSpec, SignedBody, Signer,
    proto::{self, SignedMessage, prover_network_client::ProverNetworkClient},
    seal,
};
use provernet_zkvm::samples::FIB;
use tokio::runtime::Handle;
use tonic::transport::{Channel, Endpoint};

use super::Result;

/// What every account gets from the faucet (below the default faucet limit of 10^12).
pub const FUNDS: u128 = 100_000_000_000;
/// The stake provers register with.
pub const STAKE: u128 = 1_000_000_000;

/// A gRPC client.
pub type Rpc = ProverNetworkClient<Channel>;

/// A running network: the shared test network ([`TestNetwork`]) on the server runtime.
pub struct Net {
    /// The signing domain.
    pub domain: Domain,
    /// `http://` URL of the gRPC server.
    pub grpc_url: String,
    /// The network's state (read directly for settlement times; never changed here).
    pub state: Arc<NetworkState>,
    leader: TestNetwork,
    /// A second network on the same PostgreSQL, standing by and following (hot standby).
    standby: Option<TestNetwork>,
}

/// Where the network keeps its state.
#[derive(Debug, Clone)]
pub enum Database {
    /// SQLite in the bench's temp dir.
    Sqlite,
    /// A fresh schema in the PostgreSQL at this URL; with a standby process beside the leader
    /// when `standby` holds.
    Postgres { url: String, standby: bool },
}

impl Net {
    /// Launches the network on the `server` runtime with its state in `database`.
    pub async fn start(server: &Handle, database: &Database) -> Result<Self> {
        let engine = match database {
            Database::Sqlite => Engine::Sqlite,
            Database::Postgres { url, .. } => {
                Engine::At(postgres::fresh_schema_at(url, "market_bench").await)
            }
        };
        let options = Options {
            engine,
            tweak: |config| {
                // The benchmark's provers bid as fast as they can, above any one account's
                // rate limit: it measures the market, not the limiter.
                config.account_rate_limit = None;
                // Likewise the executor's queue: every RequestProof of phase 1 is taken at once.
                config.max_queued_executions = usize::MAX;
            },
            runtime: Some(server.clone()),
        };
        let leader = TestNetwork::start_with_options(options).await;
        // The standby: the same database, its own listeners; it stands by and follows the
        // leader's journal until stopped.
        let standby = match database {
            Database::Postgres { standby: true, .. } => Some(leader.another_process().await),
            _ => None,
        };
        Ok(Self {
            domain: leader.domain.clone(),
            grpc_url: leader.url.clone(),
            state: leader.handle.state.clone(),
            leader,
            standby,
        })
    }

    /// A client on a connection of its own.
    pub async fn connect(&self) -> Result<Rpc> {
        let channel = Endpoint::from_shared(self.grpc_url.clone())?.connect().await?;
        Ok(ProverNetworkClient::new(channel))
    }

    /// Stops the network and waits for its tasks (the standby first, so that it does not take
    /// over). The market's own ledger check only: the bench's accounts sign by themselves.
    pub async fn stop(self) -> Result<()> {
        if let Some(standby) = self.standby {
            standby.stop_unchecked().await;
        }
        if let Err((held, deposits)) = self.state.market().check_ledger() {
            return Err(format!("ledger out of balance: {held} held, {deposits} deposited").into());
        }
        self.leader.stop_unchecked().await;
        Ok(())
    }
}

/// An account and the nonce its next signed call carries (tracked here: each accepted call
/// uses exactly one).
pub struct Account {
    /// Its key.
    pub signer: Signer,
    /// The next nonce.
    pub nonce: u64,
}

impl Account {
    /// A fresh account (nonce 0).
    pub fn random() -> Self {
        Self { signer: Signer::random(), nonce: 0 }
    }

    /// Seals `body` with the next nonce, and advances it.
    pub fn sign<B: SignedBody>(
        &mut self,
        domain: &Domain,
        body: impl FnOnce(u64) -> B,
    ) -> SignedMessage {
        let message = seal(&self.signer, domain, &body(self.nonce));
        self.nonce += 1;
        message
    }

    /// Credits [`FUNDS`] through the faucet.
    pub async fn fund(&mut self, net: &Net, rpc: &mut Rpc) -> Result<()> {
        let message =
            self.sign(&net.domain, |nonce| proto::FaucetBody { nonce, amount: FUNDS.to_string() });
        rpc.faucet(message).await?;
        Ok(())
    }
}

/// A prover: the owner that stakes, and the operator key that bids.
pub struct Prover {
    /// The owner account (its address is the prover's).
    pub owner: Account,
    /// The operator, which signs the bids.
    pub operator: Account,
}

impl Prover {
    /// Funds a new owner and registers it with [`STAKE`] and a new operator key.
    pub async fn register(net: &Net, rpc: &mut Rpc) -> Result<Self> {
        let mut owner = Account::random();
        owner.fund(net, rpc).await?;
        let operator = Account::random();
        let message = owner.sign(&net.domain, |nonce| proto::RegisterProverBody {
            nonce,
            stake: STAKE.to_string(),
            operator: operator.signer.address().as_bytes().to_vec(),
        });
        rpc.register_prover(message).await?;
        Ok(Self { owner, operator })
    }

    /// A bid of `price` per PGU on `request_id`, signed by the operator with its next nonce.
    pub fn sign_bid(&mut self, domain: &Domain, request_id: &[u8], price: u128) -> SignedMessage {
        let prover = self.owner.signer.address().as_bytes().to_vec();
        self.operator.sign(domain, |nonce| proto::BidBody {
            nonce,
            request_id: request_id.to_vec(),
            price_per_pgu: price.to_string(),
            prover,
        })
    }
}

/// The registered fib program and its uploaded inputs.
pub struct Program(test_utils::Program);

impl Program {
    /// Uploads and registers the fib sample and uploads its inputs, as `account` (whose next
    /// nonce is then read back).
    pub async fn register(net: &Net, account: &mut Account) -> Result<Self> {
        let program = net.leader.program(&account.signer, &FIB, false).await;
        account.nonce = net.leader.nonce(&account.signer.address()).await;
        Ok(Self(program))
    }

    /// A request: at most 2^16 PGUs at 10 per PGU plus a base fee of 1,000, auction period
    /// `period` seconds, deadline `deadline_in` seconds from now.
    pub fn spec(&self, period: u64, deadline_in: u64) -> RequestSpec {
        let mut spec = self.0.spec(period);
        spec.deadline = test_utils::now_secs() + deadline_in;
        spec
    }
}

//! The settlement phase: short auctions with bids in before their period ends, and the delay
//! from the period's end to the assignment, as recorded by the market and as seen by a
//! subscriber — on an otherwise idle network, and under a stream of bids on other requests.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use provernet_types::{
    RequestId,
    proto::{self, SignedMessage, request_event::Event},
};
use tokio::{sync::Notify, task::JoinHandle};

use super::{
    PATIENCE, Result, Sizes,
    setup::{Account, Net, Program, Prover},
    stats::spread_ms,
};

/// Bids per auction.
pub const BIDDERS_PER_AUCTION: usize = 3;

/// Who acts in the auctions, each behind a lock held across its call so that its nonces go
/// out in order.
pub struct Actors {
    /// Requesters, taken in turn.
    pub requesters: Vec<Arc<tokio::sync::Mutex<Account>>>,
    /// Bidding provers, taken in turn.
    pub bidders: Vec<Arc<tokio::sync::Mutex<Prover>>>,
}

/// What the event subscription saw, with the client's clock.
#[derive(Default)]
struct Seen {
    executed: HashSet<Vec<u8>>,
    /// Unix microseconds at which Assigned arrived.
    assigned: HashMap<Vec<u8>, u64>,
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// One settlement run's findings.
pub struct Settlement {
    /// What the network was doing meanwhile.
    pub label: String,
    /// Per timer-settled auction: assignment time − period end, in ms (the market's clock).
    settled: Vec<f64>,
    /// Per end second: the first assignment's delay, in ms.
    first: Vec<f64>,
    /// Per timer-settled auction: Assigned received − period end, in ms.
    observed: Vec<f64>,
    /// Auctions whose bids all came after the period (settled by the bid, not the timer).
    late: usize,
    /// Most auctions whose period ended in the same second.
    same_end: usize,
}

/// Prints the settlement runs as one table.
pub fn print(runs: &[Settlement], period: u64) {
    println!();
    println!(
        "Settlement ({period} s auctions, {BIDDERS_PER_AUCTION} bids each placed once executed; delay after the period's end, p50 / p99 / max, ms):"
    );
    println!();
    println!(
        "| network | auctions (by timer / by a late bid) | most ending in one second | assignment recorded (market clock, 1 ms) | first of its second | Assigned received by a subscriber (after the DB commit) |"
    );
    println!("|---|---|---|---|---|---|");
    for run in runs {
        println!(
            "| {} | {} / {} | {} | {} | {} | **{}** |",
            run.label,
            run.settled.len(),
            run.late,
            run.same_end,
            spread_ms(&run.settled),
            spread_ms(&run.first),
            spread_ms(&run.observed)
        );
    }
}

/// Runs `sizes.auctions` auctions of `sizes.period` seconds, started at `sizes.auction_rate`
/// per second, each with [`BIDDERS_PER_AUCTION`] bids placed as soon as it is executed, and
/// measures when each settles.
pub async fn measure(
    net: &Net,
    sizes: &Sizes,
    program: &Program,
    actors: &Actors,
    label: String,
) -> Result<Settlement> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let notify = Arc::new(Notify::new());
    let mut stream = net
        .connect()
        .await?
        .subscribe_requests(proto::SubscribeRequestsRequest::default())
        .await?
        .into_inner();
    let collector = {
        let (seen, notify) = (seen.clone(), notify.clone());
        tokio::spawn(async move {
            while let Ok(Some(event)) = stream.message().await {
                let at = now_us();
                {
                    let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                    match event.event {
                        Some(Event::Executed(_)) => {
                            seen.executed.insert(event.request_id);
                        }
                        Some(Event::Assigned(_)) => {
                            seen.assigned.insert(event.request_id, at);
                        }
                        _ => {}
                    }
                }
                notify.notify_waiters();
            }
        })
    };
    let rpc = net.connect().await?;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(sizes.auctions);
    for a in 0..sizes.auctions {
        let start_at = started + Duration::from_secs_f64(a as f64 / sizes.auction_rate);
        tokio::time::sleep_until(start_at.into()).await;
        let requester = actors.requesters[a % actors.requesters.len()].clone();
        let bidders: Vec<_> = (0..BIDDERS_PER_AUCTION)
            .map(|k| actors.bidders[(a * BIDDERS_PER_AUCTION + k) % actors.bidders.len()].clone())
            .collect();
        let spec = program.spec(sizes.period, 120);
        let (mut rpc, domain) = (rpc.clone(), net.domain.clone());
        let (seen, notify) = (seen.clone(), notify.clone());
        tasks.push(tokio::spawn(async move {
            let id = {
                let mut requester = requester.lock().await;
                let message = requester.sign(&domain, |nonce| spec.to_body(nonce));
                rpc.request_proof(message).await?.into_inner().request_id
            };
            wait_for(&seen, &notify, |s| s.executed.contains(&id)).await?;
            for (k, bidder) in bidders.iter().enumerate() {
                let mut bidder = bidder.lock().await;
                let message = bidder.sign_bid(&domain, &id, 5 + k as u128);
                rpc.bid(message).await?;
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(id)
        }));
    }
    let mut ids = Vec::with_capacity(tasks.len());
    for task in tasks {
        ids.push(task.await.map_err(|e| e.to_string())??);
    }
    wait_for(&seen, &notify, |s| ids.iter().all(|id| s.assigned.contains_key(id))).await?;
    collector.abort();

    let assigned = seen.lock().unwrap_or_else(|p| p.into_inner()).assigned.clone();
    let market = net.state.market();
    let mut run = Settlement {
        label,
        settled: Vec::new(),
        first: Vec::new(),
        observed: Vec::new(),
        late: 0,
        same_end: 0,
    };
    // Per end second: (auctions ending then, first assignment's delay).
    let mut ends: BTreeMap<u64, (usize, f64)> = BTreeMap::new();
    for id in &ids {
        let r =
            market.request(&RequestId::from_slice(id)?).ok_or("a settlement request vanished")?;
        let end_ms = r.auction_end() * 1000;
        let at_ms = r.assignment.as_ref().ok_or("not assigned")?.at_ms;
        let delay = at_ms as f64 - end_ms as f64;
        let end = ends.entry(end_ms).or_insert((0, f64::INFINITY));
        end.0 += 1;
        if !r.bids.iter().any(|b| b.at_ms < end_ms) {
            run.late += 1;
            continue;
        }
        end.1 = end.1.min(delay);
        run.settled.push(delay);
        run.observed.push(assigned[id] as f64 / 1e3 - end_ms as f64);
    }
    run.same_end = ends.values().map(|e| e.0).max().unwrap_or(0);
    run.first = ends.values().map(|e| e.1).filter(|d| d.is_finite()).collect();
    for values in [&mut run.settled, &mut run.first, &mut run.observed] {
        values.sort_by(f64::total_cmp);
    }
    Ok(run)
}

/// Waits until `done` holds for what the subscription has seen, within [`PATIENCE`].
async fn wait_for(seen: &Mutex<Seen>, notify: &Notify, done: impl Fn(&Seen) -> bool) -> Result<()> {
    let wait = async {
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if done(&seen.lock().unwrap_or_else(|p| p.into_inner())) {
                return;
            }
            notified.await;
        }
    };
    tokio::time::timeout(PATIENCE, wait).await.map_err(|_| "timed out waiting for events".into())
}

/// Background bids from clients of their own until stopped: the load under which the second
/// settlement run is measured.
pub struct Load {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    started: Instant,
    tasks: Vec<JoinHandle<std::result::Result<bool, tonic::Status>>>,
}

impl Load {
    /// Starts one client per batch of pre-signed bids, each sending in order until stopped.
    pub async fn start(net: &Net, batches: Vec<Vec<SignedMessage>>) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::with_capacity(batches.len());
        for batch in batches {
            let mut rpc = net.connect().await?;
            let (stop, done) = (stop.clone(), done.clone());
            tasks.push(tokio::spawn(async move {
                for message in batch {
                    if stop.load(Ordering::Relaxed) {
                        return Ok(false);
                    }
                    rpc.bid(message).await?;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                // Ran out of pre-signed bids before being stopped.
                Ok(true)
            }));
        }
        Ok(Self { stop, done, started: Instant::now(), tasks })
    }

    /// Stops the clients; returns the bids per second they achieved, and whether any of them
    /// ran out of bids early (then the load was lighter at the end).
    pub async fn stop(self) -> Result<(f64, bool)> {
        self.stop.store(true, Ordering::Relaxed);
        let elapsed = self.started.elapsed();
        let mut exhausted = false;
        for task in self.tasks {
            exhausted |= task.await??;
        }
        Ok((self.done.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64(), exhausted))
    }
}

//! Channels funded from the host's wallet through the engine (`shard_engine::fund_channel`):
//! two opens in flight at once never pick the same coin; every input of each funding
//! transaction passes libbitcoinconsensus; the change and the fee are exact; the channels
//! confirm and carry payments; a failed open leaves no coin reserved.

use lnshard_testkit as support;
use support::chain::verify_inputs;

use bitcoin::hashes::Hash;
use bitcoin::{Amount, ScriptBuf, Transaction, TxOut, WScriptHash};
use lightning_core::node::Event;
use lightning_core::types::ChannelId;
use lightning_core::wallet::{fee_for_weight, CoinSelectionError};
use shard_engine::{fund_channel, Engine, FundingError, Reservation, SimRng, Wallet};
use support::wallet::TestWallet;
use support::{engine_config, hub_secret, hub_seed, Chan, Hub, Net, PaymentMix, Threaded, SATS};

const FEERATE: u32 = 2_000;

fn funding_events(net: &Net<Threaded>) -> Vec<Event> {
    net.hub_events
        .iter()
        .filter(|e| matches!(e, Event::FundingGenerationReady { .. }))
        .cloned()
        .collect()
}

#[test]
fn channels_funded_from_the_wallet_confirm_and_carry_payments() {
    let engine = Engine::new(
        engine_config(2),
        hub_secret(),
        hub_seed(),
        100,
        support::genesis(),
    );
    let mut net = Net::new(Threaded { engine }, 2);
    net.hub_funds_itself = true;
    let wallet = TestWallet::new(b"hub wallet", &[400_000, 700_000, 150_000, 1_200_000]);
    let start_balance = wallet.balance_satoshis();
    let change_script = wallet.change_script().expect("change script");

    // Two opens in flight at once: both wait for funding before either is funded.
    for i in 0..2 {
        let id = net.peer_id(i);
        net.hub
            .create_channel(id, SATS, SATS * 500)
            .expect("create_channel");
    }
    net.run();
    let events = funding_events(&net);
    assert_eq!(events.len(), 2, "two FundingGenerationReady");

    let mut funded = Vec::new();
    for event in &events {
        let f = fund_channel(&net.hub.engine, &wallet, event, FEERATE).expect("fund_channel");
        funded.push(f);
    }
    // Largest first: the 1.2M coin pays the first; the second cannot take it (reserved), so
    // it takes the 700k and the 400k.
    let parent = wallet.parent().clone();
    let parent_txid = parent.compute_txid();
    let vouts = |f: &shard_engine::FundedChannel| -> Vec<u32> {
        f.inputs
            .iter()
            .map(|o| {
                assert_eq!(o.txid, parent_txid);
                o.vout
            })
            .collect()
    };
    assert_eq!(vouts(&funded[0]), vec![3]);
    assert_eq!(vouts(&funded[1]), vec![1, 0]);
    let reserved = wallet.reserved();
    assert_eq!(reserved.len(), 3);
    for f in &funded {
        for o in &f.inputs {
            assert_eq!(
                reserved[o],
                Reservation::ChannelFunding(f.temporary_channel_id)
            );
        }
    }

    for (f, event) in funded.iter().zip(&events) {
        let Event::FundingGenerationReady { output_script, .. } = event else {
            unreachable!()
        };
        let prevouts: Vec<TxOut> = f
            .inputs
            .iter()
            .map(|o| parent.output[o.vout as usize].clone())
            .collect();
        verify_inputs(&f.tx, &prevouts);
        // The funding output, the change and the fee, to the satoshi.
        assert_eq!(
            f.tx.output[0],
            TxOut {
                value: Amount::from_sat(SATS),
                script_pubkey: output_script.clone(),
            }
        );
        let change_vout = f.change_vout.expect("change above dust") as usize;
        let change = &f.tx.output[change_vout];
        assert_eq!(change.script_pubkey, change_script);
        let inputs: u64 = prevouts.iter().map(|p| p.value.to_sat()).sum();
        assert_eq!(inputs, SATS + change.value.to_sat() + f.fee_satoshis);
        // The fee pays the feerate on the real weight (signatures may be a byte shorter
        // than the 72 bytes it was computed for: at most one vbyte per input over).
        let weight = f.tx.weight().to_wu();
        assert!(f.fee_satoshis >= fee_for_weight(FEERATE, weight));
        assert!(
            f.fee_satoshis <= fee_for_weight(FEERATE, weight + 4 * f.tx.input.len() as u64),
            "fee {} for weight {weight}",
            f.fee_satoshis
        );
    }

    // funding_signed arrives: the engine broadcasts each funding transaction as signed.
    net.run();
    for f in &funded {
        let txid = f.tx.compute_txid();
        let sent = net
            .chain
            .mempool
            .iter()
            .find(|t| t.compute_txid() == txid)
            .expect("funding transaction broadcast");
        assert_eq!(sent, &f.tx, "broadcast as the wallet signed it");
    }
    net.mine(6);
    for f in &funded {
        wallet.transaction_confirmed(&f.tx);
    }
    assert!(
        wallet.reserved().is_empty(),
        "spent coins leave the reservations"
    );
    let fees: u64 = funded.iter().map(|f| f.fee_satoshis).sum();
    assert_eq!(wallet.balance_satoshis(), start_balance - 2 * SATS - fees);
    // What is left: the 150k coin and the two change outputs.
    assert_eq!(wallet.coins().len(), 3);

    // The channels are ready; payments cross the hub between the two peers.
    for i in 0..2 {
        let pid = net.peer_id(i);
        let (channel_id, scid) = net
            .hub_events
            .iter()
            .find_map(|e| match e {
                Event::ChannelReady {
                    channel_id,
                    counterparty_node_id,
                    short_channel_id: Some(scid),
                    ..
                } if *counterparty_node_id == pid => Some((*channel_id, *scid)),
                _ => None,
            })
            .expect("channel ready");
        net.channels.push(Chan {
            peer: i,
            channel_id,
            scid,
        });
    }
    let initial = net.balances();
    let mut rng = SimRng::new(3);
    for _ in 0..3 {
        net.start_random_payments(
            &mut rng,
            2,
            PaymentMix {
                extra_msat: 10_000_000,
                from_hub_every: Some(2),
                fail_one_in: None,
            },
        );
        net.run();
        net.settle();
    }
    assert!(
        net.payments.values().any(|p| p.outcomes == vec![true]),
        "payments went through"
    );
    let errors = net.check(&initial);
    assert!(errors.is_empty(), "{errors:#?}");

    // A failed open leaves nothing reserved: an unknown channel (the engine refuses it after
    // the wallet signed), and a channel the wallet cannot pay.
    let before = wallet.coins();
    let forged = |temp: u8, value: u64| Event::FundingGenerationReady {
        temporary_channel_id: ChannelId([temp; 32]),
        counterparty_node_id: net.peer_id(0),
        channel_value_satoshis: value,
        output_script: ScriptBuf::new_p2wsh(&WScriptHash::from_byte_array([5; 32])),
        user_channel_id: 0,
    };
    match fund_channel(&net.hub.engine, &wallet, &forged(1, 100_000), FEERATE) {
        Err(FundingError::Engine(shard_engine::EngineError::UnknownChannel(_))) => {}
        other => panic!("{other:?}"),
    }
    assert!(wallet.reserved().is_empty(), "released after the refusal");
    match fund_channel(&net.hub.engine, &wallet, &forged(2, 10 * SATS), FEERATE) {
        Err(FundingError::Selection(CoinSelectionError::InsufficientFunds {
            available_satoshis,
            ..
        })) => assert_eq!(available_satoshis, wallet.balance_satoshis()),
        other => panic!("{other:?}"),
    }
    assert!(wallet.reserved().is_empty());
    assert_eq!(wallet.coins(), before);
}

/// A wallet whose first reservation finds a chosen coin taken meanwhile (another open
/// reserved it between the listing and the reservation).
struct Contended {
    inner: TestWallet,
    raced: std::sync::atomic::AtomicBool,
}

impl Wallet for Contended {
    fn list_spendable(
        &self,
    ) -> Result<Vec<lightning_core::wallet::WalletUtxo>, shard_engine::WalletError> {
        self.inner.list_spendable()
    }
    fn reserve(
        &self,
        purpose: Reservation,
        outpoints: &[bitcoin::OutPoint],
    ) -> Result<(), shard_engine::WalletError> {
        if !self.raced.swap(true, std::sync::atomic::Ordering::SeqCst) {
            self.inner
                .reserve(
                    Reservation::ChannelFunding(ChannelId([9; 32])),
                    &outpoints[..1],
                )
                .expect("the other open's reservation");
        }
        self.inner.reserve(purpose, outpoints)
    }
    fn release(&self, outpoints: &[bitcoin::OutPoint]) -> Result<(), shard_engine::WalletError> {
        self.inner.release(outpoints)
    }
    fn sign_inputs(
        &self,
        tx: &mut Transaction,
        prevouts: &[TxOut],
    ) -> Result<(), shard_engine::WalletError> {
        self.inner.sign_inputs(tx, prevouts)
    }
    fn change_script(&self) -> Result<ScriptBuf, shard_engine::WalletError> {
        self.inner.change_script()
    }
}

#[test]
fn a_coin_reserved_between_listing_and_reserving_is_not_used_twice() {
    let engine = Engine::new(
        engine_config(1),
        hub_secret(),
        hub_seed(),
        100,
        support::genesis(),
    );
    let mut net = Net::new(Threaded { engine }, 1);
    net.hub_funds_itself = true;
    let wallet = Contended {
        inner: TestWallet::new(b"contended", &[1_500_000, 1_300_000]),
        raced: std::sync::atomic::AtomicBool::new(false),
    };
    let id = net.peer_id(0);
    net.hub.create_channel(id, SATS, 0).expect("create_channel");
    net.run();
    let event = funding_events(&net).pop().expect("FundingGenerationReady");
    let funded = fund_channel(&net.hub.engine, &wallet, &event, FEERATE).expect("fund_channel");
    let parent = wallet.inner.parent().clone();
    // The 1.5M coin went to the other open: selected again, the 1.3M coin pays.
    assert_eq!(funded.inputs.len(), 1);
    assert_eq!(funded.inputs[0].vout, 1);
    let reserved = wallet.inner.reserved();
    assert_eq!(
        reserved[&funded.inputs[0]],
        Reservation::ChannelFunding(funded.temporary_channel_id)
    );
    assert_eq!(reserved.len(), 2);
    verify_inputs(&funded.tx, &[parent.output[1].clone()]);
    net.run();
    net.mine(6);
    assert!(net.hub_events.iter().any(|e| matches!(
        e,
        Event::ChannelReady { counterparty_node_id, .. } if *counterparty_node_id == id
    )));
}

#[test]
fn a_wallet_funded_channel_passes_the_validating_chain() {
    let mut chain = support::chain::ValidatingChain::new();
    chain.mine(100);
    let engine = Engine::new(
        engine_config(2),
        hub_secret(),
        hub_seed(),
        chain.height(),
        chain.tip(),
    );
    let mut net = Net::new_validating(
        Threaded { engine },
        1,
        support::onchain::static_remotekey_config(),
        chain,
    );
    net.closures_expected = false;
    net.hub_funds_itself = true;
    let wallet = TestWallet::new(b"validated wallet", &[800_000, 900_000]);
    // The wallet's coins come from a made-up parent: the chain takes it on trust.
    net.vchain_mut().submit_funding(wallet.parent().clone());
    let id = net.peer_id(0);
    net.hub
        .create_channel(id, SATS, SATS * 500)
        .expect("create_channel");
    net.run();
    let event = funding_events(&net).pop().expect("FundingGenerationReady");
    let funded = fund_channel(&net.hub.engine, &wallet, &event, FEERATE).expect("fund_channel");
    assert_eq!(funded.inputs.len(), 2, "neither coin alone pays 1M");
    net.run();
    // The hub's broadcast went through the chain's mempool (scripts by libbitcoinconsensus,
    // relay policy): mined, it confirms.
    net.mine(6);
    let txid = funded.tx.compute_txid();
    assert_eq!(net.vchain().confirmations(&txid), 6);
    assert_eq!(net.vchain().get_tx(&txid), Some(&funded.tx));
    assert!(net.violations.is_empty(), "{:#?}", net.violations);
    assert!(net.hub_events.iter().any(|e| matches!(
        e,
        Event::ChannelReady { counterparty_node_id, .. } if *counterparty_node_id == id
    )));
}

#[test]
fn fund_channel_works_over_the_simulator_too() {
    for seed in [1u64, 2, 3] {
        let sim = shard_engine::Sim::new(
            engine_config(3),
            hub_secret(),
            hub_seed(),
            100,
            support::genesis(),
            seed,
        );
        let mut net = Net::new(sim, 2);
        net.hub_funds_itself = true;
        let wallet = TestWallet::new(b"sim wallet", &[1_100_000, 1_050_000, 90_000]);
        for i in 0..2 {
            let id = net.peer_id(i);
            net.hub.create_channel(id, SATS, 0).expect("create_channel");
        }
        net.run();
        let events: Vec<Event> = net
            .hub_events
            .iter()
            .filter(|e| matches!(e, Event::FundingGenerationReady { .. }))
            .cloned()
            .collect();
        assert_eq!(events.len(), 2, "seed {seed}");
        let funded: Vec<_> = events
            .iter()
            .map(|e| fund_channel(&mut net.hub, &wallet, e, FEERATE).expect("fund_channel"))
            .collect();
        // One big coin each; the small one is never needed.
        assert_ne!(funded[0].inputs, funded[1].inputs, "seed {seed}");
        let parent = wallet.parent().clone();
        for f in &funded {
            assert_eq!(f.inputs.len(), 1);
            verify_inputs(&f.tx, &[parent.output[f.inputs[0].vout as usize].clone()]);
        }
        net.run();
        net.mine(6);
        let ready = net
            .hub_events
            .iter()
            .filter(|e| matches!(e, Event::ChannelReady { .. }))
            .count();
        assert_eq!(ready, 2, "seed {seed}");
    }
}

//! The agent's own pages in a real headless Chromium against the real agent and the
//! simulator: the POS page pays (approved, declined, not sent), the customer display follows
//! the payment live in a second tab, an unknown result is resolved from the POS page, the
//! status page lists terminals, transactions (unknown first) and tills, and the connection
//! doctor passes its checks. TLS is verified: the browser's NSS database trusts the agent's
//! generated CA, nothing else. Screenshots go to `target/screenshots/` for review.

use crate::browser_support;
use crate::common;

use std::sync::Arc;
use std::time::Duration;

use browser_support::{available, q, tid, Browser, Page};
use caisse_ap_relay::config::{Config, Refunds, Role};
use caisse_ap_relay::protocol::{TicketCopy, TicketFormat, TicketRequest};
use caisse_ap_relay::sim::{Behaviour, Fault, Simulator};
use common::*;
use serde_json::json;

/// A running agent with terminals `tpe-1` (demo simulator) and `tpe-off` (nothing listens),
/// and a browser trusting its CA.
struct Shop {
    agent: TestAgent,
    sim: Simulator,
    browser: Browser,
}

/// A third cashier, allowed on `tpe-1` only (the guarded shop).
const TILL_3: &str = "till-3-token-0123456789";

impl Shop {
    /// `None` (test skipped) when Chromium is not installed and CI is not set.
    async fn open(test: &str) -> Option<Shop> {
        Shop::open_with(test, |_| ()).await
    }

    /// A shop with the safety guards of api.md §10 on as shipped (`tpe-1` guarded, a 60 s
    /// duplicate window), linked refunds, and `till-3` (cashier on `tpe-1`).
    async fn guarded(test: &str) -> Option<Shop> {
        Shop::open_with(test, |config| {
            config.terminals[0].guard_unknown = true;
            config.server.duplicate_window = Duration::from_secs(60);
            config.server.refunds = Refunds::Linked;
            config
                .tills
                .push(till("till-3", TILL_3, Role::Cashier, Some(&["tpe-1"])));
        })
        .await
    }

    /// As [`Shop::open`], with `adapt` applied to the configuration (`tpe-1` is
    /// `terminals[0]`).
    async fn open_with(test: &str, adapt: impl FnOnce(&mut Config)) -> Option<Shop> {
        if !available(test) {
            return None;
        }
        // The demo's magic amounts, with a short "card reading" that still shows waiting_card.
        let sim = spawn_sim(Behaviour {
            delay: Duration::from_millis(300),
            ..Behaviour::demo()
        })
        .await;
        let terminals = vec![
            terminal("tpe-1", sim.addr(), Duration::from_secs(5)),
            terminal("tpe-off", closed_port().await, Duration::from_secs(5)),
        ];
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let mut config = config(dir.path(), terminals);
        adapt(&mut config);
        let agent = spawn_agent_with(dir, &config, options()).await;
        let browser = Browser::launch(Some(&path_in(&agent, "certs/ca.pem"))).await;
        Some(Shop {
            agent,
            sim,
            browser,
        })
    }

    /// `https://localhost:PORT{path}`: `localhost` is a name in the agent's certificate.
    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.agent.addr.port())
    }

    /// A new tab on `path`, signed in with `token` through the page's form (screenshot
    /// `form_shot` of the form first, if given).
    async fn signed_in(&self, path: &str, token: &str, form_shot: Option<&str>) -> Page {
        let page = self.browser.page().await;
        page.goto(&self.url(path)).await;
        if let Some(name) = form_shot {
            let form = format!("{}.checkVisibility()", q(&tid("auth-form")));
            page.wait_for(&form, "the sign-in form").await;
            page.screenshots(name).await;
        }
        page.type_into(&tid("auth-token"), token).await;
        page.click(&tid("auth-submit")).await;
        page.wait_state(&tid("connection-status"), "authenticated")
            .await;
        page
    }
}

/// Types `amount` on the keypad and presses the pay button.
async fn start_payment(page: &Page, amount: &str) {
    for key in amount.chars() {
        page.click(&tid(&format!("keypad-{key}"))).await;
    }
    assert_eq!(page.data(&tid("amount-display"), "amount").await, amount);
    page.click(&tid("pay-button")).await;
}

/// Pays `amount` on the selected terminal and waits for the result card; returns the
/// payment id and the card's state.
async fn pay_on_page(page: &Page, amount: &str) -> (String, String) {
    start_payment(page, amount).await;
    result_card(page).await
}

/// Waits for the result card; returns the payment id and the card's state.
async fn result_card(page: &Page) -> (String, String) {
    let state = page
        .wait_for(
            &format!(
                "(e => !e.hidden && e.dataset.state)({})",
                q(&tid("result-card"))
            ),
            "a result card",
        )
        .await;
    let id = page.text(&tid("payment-id")).await;
    (id, state.as_str().unwrap().to_owned())
}

/// The `data-state` of each timeline step and whether it shows a time.
async fn timeline(page: &Page) -> Vec<(String, bool)> {
    let mut steps = Vec::new();
    for step in ["sent", "waiting_card", "result"] {
        let selector = tid(&format!("timeline-step-{step}"));
        let state = page.data(&selector, "state").await;
        let time = page.text(&format!("{selector} time")).await;
        steps.push((state, !time.is_empty()));
    }
    steps
}

fn done_with_time() -> (String, bool) {
    ("done".to_owned(), true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pos_page_pays_and_shows_each_outcome() {
    let Some(shop) = Shop::open("the_pos_page_pays_and_shows_each_outcome").await else {
        return;
    };
    let page = shop.signed_in("/", CASHIER, Some("pos-sign-in")).await;
    assert_eq!(page.text(&tid("till-name")).await, "till-1");
    page.wait_for(&q(&tid("terminal-option-tpe-1")), "terminal tpe-1")
        .await;
    page.screenshots("pos-ready").await;

    pays_approved(&page).await;
    page.click(&tid("new-payment-button")).await;
    pays_declined(&page).await;
    page.click(&tid("new-payment-button")).await;
    pays_not_sent(&page).await;

    let rows = page
        .eval(&format!(
            "[...document.querySelectorAll('{} button')].map(b => b.dataset.state)",
            tid("recent-list")
        ))
        .await;
    assert_eq!(rows, json!(["not_sent", "declined", "approved"]));
}

async fn pays_approved(page: &Page) {
    let (_, state) = pay_on_page(page, "1245").await;
    assert_eq!(state, "approved");
    // Each step shows the time the page saw it: sent and waiting_card were both lived.
    assert_eq!(timeline(page).await, vec![done_with_time(); 3]);
    let result = page.data(&tid("timeline-step-result"), "result").await;
    assert_eq!(result, "approved");
    let card = page.text(&tid("result-card")).await;
    assert!(card.contains("12,45"), "{card}");
    assert!(card.contains("CB"), "application shown: {card}");
    assert!(card.contains("497010######1234"), "masked PAN: {card}");
    page.screenshots("pos-approved").await;
}

/// ,91: the demo terminal declines with AF 04.
async fn pays_declined(page: &Page) {
    let (_, state) = pay_on_page(page, "1291").await;
    assert_eq!(state, "declined");
    let reason = page.text(&tid("result-reason")).await;
    assert!(reason.contains("AF 04"), "{reason}");
    let result = page.data(&tid("timeline-step-result"), "result").await;
    assert_eq!(result, "declined");
    page.screenshots("pos-declined").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ancv_pays_and_the_ticket_shows_and_prints() {
    let both = TicketRequest {
        copy: TicketCopy::Both,
        format: TicketFormat::Text,
    };
    let test = "ancv_pays_and_the_ticket_shows_and_prints";
    let Some(shop) = Shop::open_with(test, |c| c.terminals[0].ticket = Some(both)).await else {
        return;
    };
    let page = shop.signed_in("/", CASHIER, None).await;
    page.wait_for(&q(&tid("terminal-option-tpe-1")), "terminal tpe-1")
        .await;
    page.click(&tid("method-ancv")).await;
    page.screenshots("pos-ancv-selected").await;
    let (_, state) = pay_on_page(&page, "4000").await;
    assert_eq!(state, "approved");
    let request = shop.sim.requests().pop().unwrap();
    assert!(
        request.contains("CC00300V") && request.contains("CK003120"),
        "{request}"
    );
    // The ticket may come with the decision or as an update just after it (api.md §7.1).
    let visible = format!("(e => e && e.checkVisibility())({})", q(&tid("ticket-cb")));
    page.wait_for(&visible, "the ticket").await;
    let ticket = page.text(&tid("ticket-cb")).await;
    assert!(ticket.contains("Ticket CB — client"), "{ticket}");
    assert!(ticket.contains("CHEQUES-VACANCES ANCV"), "{ticket}");
    assert!(ticket.contains("DEBIT 40,00 EUR"), "{ticket}");
    assert!(ticket.contains("TICKET COMMERCANT"), "{ticket}");
    page.screenshots("pos-ancv-ticket").await;
    // Printed, only the ticket shows, at receipt width.
    page.call("Emulation.setEmulatedMedia", json!({"media": "print"}))
        .await;
    let printed = page
        .eval(&format!(
            "[{}, {}].map(e => getComputedStyle(e).visibility)",
            q(&tid("ticket-cb")),
            q(&tid("pay-button"))
        ))
        .await;
    assert_eq!(printed, json!(["visible", "hidden"]));
    page.screenshots("pos-ticket-print").await;
    page.call("Emulation.setEmulatedMedia", json!({"media": ""}))
        .await;
}

/// `tpe-off` refuses the connection: the request provably never left.
async fn pays_not_sent(page: &Page) {
    page.click(&tid("terminal-option-tpe-off")).await;
    let (_, state) = pay_on_page(page, "500").await;
    assert_eq!(state, "not_sent");
    let steps = timeline(page).await;
    assert_eq!(steps[0], ("skipped".to_owned(), false), "never sent");
    assert_eq!(steps[2], done_with_time());
    assert!(page
        .text(&tid("result-card"))
        .await
        .contains("rien n'a été débité"));
    page.screenshots("pos-not-sent").await;
}

/// A `/display` tab paired with a fresh display code typed into its form, watching `tpe-1`.
async fn paired_display(shop: &Shop) -> Page {
    let display = shop.browser.page().await;
    display.goto(&shop.url("/display")).await;
    let code = issue_code(&shop.agent, "counter-screen", Role::Display);
    display.type_into(&tid("auth-code"), &code).await;
    display.click(&tid("auth-submit")).await;
    display.click(&tid("terminal-choice-tpe-1")).await;
    display.wait_state(&tid("display-screen"), "idle").await;
    display
}

/// Waits until the display shows payment `id` in `state` (`waiting` or `result`) with
/// `result` (`""` while waiting).
async fn display_shows(display: &Page, id: &str, state: &str, result: &str) {
    let predicate = format!(
        "(e => e.dataset.id === {id:?} && e.dataset.state === {state:?} && e.dataset.result === {result:?})({})",
        q(&tid("display-screen"))
    );
    let what = format!("the display showing {id} {state} {result}");
    display.wait_for(&predicate, &what).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_display_follows_a_payment_live() {
    let Some(shop) = Shop::open("the_display_follows_a_payment_live").await else {
        return;
    };
    let pos = shop.signed_in("/", CASHIER, None).await;
    let display = paired_display(&shop).await;
    assert_eq!(display.text(&tid("display-title")).await, "Bonjour");
    let href = display.eval("location.href").await;
    assert_eq!(href, json!(shop.url("/display")), "no token in the URL");
    display.screenshots("display-idle").await;

    let (id, _) = pay_on_page(&pos, "1245").await;
    display_shows(&display, &id, "result", "approved").await;
    assert!(display.text(&tid("display-amount")).await.contains("12,45"));
    display.screenshots("display-approved").await;

    pos.click(&tid("new-payment-button")).await;
    let (id, _) = pay_on_page(&pos, "1291").await;
    display_shows(&display, &id, "result", "declined").await;
    display.screenshots("display-declined").await;

    waits_for_the_card_then_loses_the_terminal(shop.sim, &pos, &display).await;
}

/// A terminal that keeps the request: both screens wait for the card until the connection
/// drops; the result is then unknown, never a retry prompt.
async fn waits_for_the_card_then_loses_the_terminal(sim: Simulator, pos: &Page, display: &Page) {
    sim.set_behaviour(Behaviour {
        fault: Some(Fault::Hang),
        ..Behaviour::demo()
    });
    pos.click(&tid("new-payment-button")).await;
    start_payment(pos, "2000").await;
    pos.wait_state(&tid("timeline-step-waiting_card"), "active")
        .await;
    let id = pos.text(&tid("payment-id")).await;
    display_shows(display, &id, "waiting", "").await;
    assert!(display
        .text(&tid("display-message"))
        .await
        .contains("carte"));
    pos.screenshots("pos-waiting").await;
    display.screenshots("display-waiting").await;

    sim.shutdown();
    assert_eq!(result_card(pos).await, (id.clone(), "unknown".to_owned()));
    display_shows(display, &id, "result", "unknown").await;
    display.screenshots("display-unknown").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_result_is_resolved_from_the_pos_page() {
    let Some(shop) = Shop::open("an_unknown_result_is_resolved_from_the_pos_page").await else {
        return;
    };
    let page = shop.signed_in("/", CASHIER, None).await;
    // ,94: the terminal closes without answering after the request was sent.
    let (id, state) = pay_on_page(&page, "1294").await;
    assert_eq!(state, "unknown");
    assert_eq!(
        page.data(&tid("timeline-step-result"), "result").await,
        "unknown"
    );
    assert!(page
        .text(&tid("result-card"))
        .await
        .contains("NE PAS relancer"));
    page.screenshots("pos-unknown").await;

    page.type_into(&tid("resolve-note"), "ticket 0042 : payé")
        .await;
    page.click(&tid("resolve-approved")).await;
    page.wait_state(&tid("result-card"), "resolved").await;
    assert_eq!(page.data(&tid("result-card"), "outcome").await, "approved");
    page.screenshots("pos-resolved").await;

    let (mut ws, _) = connect_as(&shop.agent, CASHIER).await;
    send(&mut ws, json!({"type": "get", "id": id})).await;
    let record = loop {
        let message = next_message(&mut ws).await;
        if message["type"] == "transaction" && message["id"] == id.as_str() {
            break message;
        }
    };
    assert_eq!(record["state"], "unknown");
    let resolution = &record["resolution"];
    assert_eq!(resolution["outcome"], "approved");
    assert_eq!(resolution["note"], "ticket 0042 : payé");
    assert_eq!(resolution["till"], "till-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_lists_terminals_transactions_and_tills() {
    let Some(shop) = Shop::open("the_status_page_lists_terminals_transactions_and_tills").await
    else {
        return;
    };
    let (mut ws, _) = connect_as(&shop.agent, CASHIER).await;
    for (id, amount) in [("st-unknown", 1294), ("st-ok", 1000), ("st-declined", 1291)] {
        send(&mut ws, pay(id, "tpe-1", amount)).await;
        until_final(&mut ws, id).await;
    }

    // A cashier's token is refused with the way to get an operator's (§7.3).
    let refused = shop.browser.page().await;
    refused.goto(&shop.url("/status")).await;
    refused.type_into(&tid("auth-token"), CASHIER).await;
    refused.click(&tid("auth-submit")).await;
    let said = refused
        .wait_for(
            &format!(
                "(e => !e.hidden && e.textContent)({})",
                q(&tid("auth-error"))
            ),
            "the not-an-operator message",
        )
        .await;
    let said = said.as_str().unwrap();
    assert!(
        said.contains("pas d'un opérateur") && said.contains("pair --role operator"),
        "{said}"
    );
    let form = refused
        .eval(&format!("{}.textContent", q(&tid("auth-form"))))
        .await;
    let form = form.as_str().unwrap();
    assert!(
        form.contains("la page d'état") && form.contains("pair --role operator --till NOM"),
        "the sign-in form asks for an operator: {form}"
    );
    assert!(refused.eval(&format!("{}.hidden", q("#status"))).await == json!(true));
    refused.screenshots("status-not-operator").await;

    let page = shop
        .signed_in("/status", OPERATOR, Some("status-sign-in"))
        .await;
    page.wait_state(&tid("terminal-row-tpe-1"), "idle").await;
    page.wait_for(&q(&tid("terminal-row-tpe-off")), "terminal tpe-off")
        .await;
    page.wait_for(&q(&tid("till-row-till-1")), "till-1 listed")
        .await;
    let order = page
        .eval(&format!(
            "[...document.querySelectorAll('{} tbody tr')].map(r => r.dataset.testid)",
            tid("transactions-table")
        ))
        .await;
    assert_eq!(
        order,
        json!(["tx-row-st-unknown", "tx-row-st-declined", "tx-row-st-ok"])
    );
    assert_eq!(page.data(&tid("tx-row-st-unknown"), "toCheck").await, "");
    assert_eq!(page.data(&tid("unresolved"), "count").await, "1");
    assert_eq!(page.data(&tid("certificate"), "state").await, "ok");
    let tills = page.text(&tid("till-row-till-1")).await;
    assert!(tills.contains("1"), "one session of till-1: {tills}");
    let office = page.text(&tid("till-row-office")).await;
    assert!(
        office.contains("Opérateur"),
        "the page's operator: {office}"
    );
    page.screenshots("status").await;
}

/// Issue 16: « Chercher des terminaux » on the operator page, on loopback only (two
/// simulated terminals on 127.0.0.41 and .42); a second search within the minute is refused
/// with the seconds left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_page_finds_terminals_and_gives_their_blocks() {
    let Some(shop) = Shop::open("the_operator_page_finds_terminals_and_gives_their_blocks").await
    else {
        return;
    };
    let first = tokio::net::TcpListener::bind("127.0.0.41:0").await.unwrap();
    let port = first.local_addr().unwrap().port();
    let second = tokio::net::TcpListener::bind(("127.0.0.42", port))
        .await
        .unwrap();
    let _terminals = [
        Simulator::spawn(first, Behaviour::default()),
        Simulator::spawn(second, Behaviour::default()),
    ];
    let page = shop.signed_in("/status", OPERATOR, None).await;
    page.type_into(&tid("discover-subnet"), "127.0.0.40/29")
        .await;
    page.eval(&format!("{}.value = ''", q(&tid("discover-port"))))
        .await;
    page.type_into(&tid("discover-port"), &port.to_string())
        .await;
    page.click(&tid("discover-button")).await;
    page.wait_state(&tid("discovery"), "done").await;
    let status = page.text(&tid("discover-status")).await;
    assert!(status.contains("2 adresse(s)"), "{status}");
    for host in [41, 42] {
        let address = format!("127.0.0.{host}:{port}");
        let item = tid(&format!("found-{address}"));
        assert_eq!(page.data(&item, "answer").await, "terminal");
        let block = page
            .eval(&format!(
                "{}.querySelector('[data-testid=found-block]').textContent",
                q(&item)
            ))
            .await;
        let block = block.as_str().unwrap();
        assert!(
            block.contains(&format!("address = \"{address}\"")),
            "{block}"
        );
    }
    page.screenshots("status-discovery").await;

    page.click(&tid("discover-button")).await;
    page.wait_state(&tid("discovery"), "refused").await;
    let refused = page.text(&tid("discover-status")).await;
    assert!(refused.contains("réessayez dans"), "{refused}");
    page.screenshots("status-discovery-wait").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doctor_passes_on_a_trusting_browser() {
    let Some(shop) = Shop::open("the_doctor_passes_on_a_trusting_browser").await else {
        return;
    };
    let page = shop.browser.page().await;
    page.goto(&shop.url("/doctor")).await;
    // Bug 6: French by default like the other pages, though this Chromium speaks English.
    assert_eq!(
        page.eval("document.documentElement.lang").await,
        json!("fr")
    );
    for check in ["cert", "lna", "origin"] {
        page.wait_state(&format!("#check-{check}"), "ok").await;
    }
    page.wait_state("#check-token", "skip").await;
    page.type_into("#token", CASHIER).await;
    page.click("#form button[type=submit]").await;
    page.wait_state("#check-token", "ok").await;
    assert!(page.text("#check-cert").await.contains("Certificat"));
    assert!(page
        .text("#check-token")
        .await
        .contains("caisse « till-1 »"));
    page.screenshots("doctor-fr").await;
    // The language toggle redraws the details, and is remembered like the other pages'.
    page.click("#lang").await;
    page.wait_for("document.documentElement.lang === 'en'", "English")
        .await;
    let token = page.text("#check-token").await;
    assert!(
        token.contains("till \"till-1\""),
        "details redrawn: {token}"
    );
    page.screenshots("doctor").await;
    page.goto(&shop.url("/doctor")).await;
    assert_eq!(
        page.eval("document.documentElement.lang").await,
        json!("en")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_without_the_ca_refuses_the_agent() {
    if !available("a_browser_without_the_ca_refuses_the_agent") {
        return;
    }
    // The other tests pass because the CA is trusted, not because errors are ignored.
    let agent = spawn_agent(Vec::new()).await;
    let browser = Browser::launch(None).await;
    let page = browser.page().await;
    let url = format!("https://localhost:{}/", agent.addr.port());
    let error = page.navigate(&url).await;
    assert_eq!(error.as_deref(), Some("net::ERR_CERT_AUTHORITY_INVALID"));
}

// ---- issue 14: the safety guards on the POS page, and bugs 1-7 --------------------------

/// The cashier meets each guard of api.md §10 on the demo POS page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pos_page_meets_each_safety_guard() {
    let Some(shop) = Shop::guarded("the_pos_page_meets_each_safety_guard").await else {
        return;
    };
    let first = shop.signed_in("/", CASHIER, None).await;
    // ,94: the terminal closes without answering: unknown, and tpe-1 is blocked.
    let (pending, state) = pay_on_page(&first, "1294").await;
    assert_eq!(state, "unknown");

    // Another cashier on tpe-1 types 12,45 €: the page opens the check of the pending
    // payment first, then sends the payment typed.
    // Same browser: the tab starts signed in as till-1 (the saved token); sign out first.
    let page = shop.browser.page().await;
    page.goto(&shop.url("/")).await;
    page.click(&tid("logout-button")).await;
    page.type_into(&tid("auth-token"), TILL_3).await;
    page.click(&tid("auth-submit")).await;
    page.wait_for(
        &format!("{}?.innerText === 'till-3'", q(&tid("till-name"))),
        "till-3 signed in",
    )
    .await;
    page.wait_state(&tid("connection-status"), "authenticated")
        .await;
    start_payment(&page, "1245").await;
    page.wait_for(
        &format!("{}?.checkVisibility()", q(&tid("resolve-before"))),
        "the check first",
    )
    .await;
    assert_eq!(page.text(&tid("payment-id")).await, pending);
    assert!(page.text(&tid("resolve-before")).await.contains("12,45"));
    page.screenshots("pos-guard-unknown").await;
    page.click(&tid("resolve-not-charged")).await;
    page.wait_state(&tid("result-card"), "approved").await;
    let paid = page.text(&tid("payment-id")).await;
    assert_ne!(paid, pending);
    assert!(page.text("#progress-title").await.contains("12,45"));

    // The same amount again: a confirmation naming the earlier payment.
    page.click(&tid("new-payment-button")).await;
    start_payment(&page, "1245").await;
    page.wait_state(&tid("result-card"), "duplicate").await;
    let previous = page
        .wait_for(
            &format!(
                "{}?.innerText.includes({paid:?})",
                q(&tid("duplicate-previous"))
            ),
            "the earlier payment named",
        )
        .await;
    assert_eq!(previous, json!(true));
    assert!(page
        .text(&tid("duplicate-previous"))
        .await
        .contains("12,45"));
    page.screenshots("pos-guard-duplicate").await;
    page.click(&tid("duplicate-confirm")).await;
    page.wait_state(&tid("result-card"), "approved").await;
    let twice = page.text(&tid("payment-id")).await;

    // A linked refund: from the list of this till's payments, capped by what is left.
    page.click(&tid("new-payment-button")).await;
    page.click(&tid("action-refund")).await;
    page.wait_for(
        &format!("{}?.checked", q(&tid(&format!("refund-of-{twice}")))),
        "the newest payment chosen",
    )
    .await;
    assert_eq!(page.data(&tid("amount-display"), "amount").await, "1245");
    page.click(&tid("keypad-back")).await;
    page.screenshots("pos-guard-refund").await;
    page.click(&tid("pay-button")).await;
    let (refund, state) = result_card(&page).await;
    assert_eq!(state, "approved");

    let (mut ws, _) = connect_as(&shop.agent, TILL_3).await;
    send(&mut ws, json!({"type": "get", "id": refund})).await;
    let record = until_state(&mut ws, &refund, "approved").await;
    assert_eq!(
        (&record["refund_of"], &record["amount"]),
        (&json!(twice), &json!(124))
    );
    send(&mut ws, json!({"type": "get", "id": twice})).await;
    let record = until_state(&mut ws, &twice, "approved").await;
    assert_eq!(record["confirm_duplicate"], true);
    let (mut owner, _) = connect_as(&shop.agent, CASHIER).await;
    send(&mut owner, json!({"type": "get", "id": pending})).await;
    let record = until_state(&mut owner, &pending, "unknown").await;
    assert_eq!(record["resolution"]["till"], "till-3");
}

/// Bug 1: a display opened after a finished payment showed it again to the next customer.
/// Bug 2: after a resolve, it said "checking" again. Bug 4: one tap forgot its pairing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_display_shows_only_live_results_and_asks_before_forgetting() {
    let Some(shop) =
        Shop::open("the_display_shows_only_live_results_and_asks_before_forgetting").await
    else {
        return;
    };
    let pos = shop.signed_in("/", CASHIER, None).await;
    let (id, _) = pay_on_page(&pos, "3990").await;
    let display = paired_display(&shop).await;
    // The watch answer replays the finished payment: old news, the screen stays idle.
    display.eval("new Promise(r => setTimeout(r, 1000))").await;
    assert_eq!(display.data(&tid("display-screen"), "state").await, "idle");
    assert_eq!(display.text(&tid("display-title")).await, "Bonjour");
    display.goto(&shop.url("/display")).await;
    display
        .wait_state(&tid("connection-status"), "authenticated")
        .await;
    display.eval("new Promise(r => setTimeout(r, 1000))").await;
    assert_eq!(
        display.data(&tid("display-screen"), "state").await,
        "idle",
        "{id} shown again after a reload"
    );

    // An unknown result, then the cashier's check: the display shows what the ticket said.
    pos.click(&tid("new-payment-button")).await;
    let (unknown, _) = pay_on_page(&pos, "1294").await;
    display_shows(&display, &unknown, "result", "unknown").await;
    pos.click(&tid("resolve-approved")).await;
    display_shows(&display, &unknown, "result", "approved").await;
    display.eval("new Promise(r => setTimeout(r, 500))").await;
    assert_ne!(
        display.data(&tid("display-screen"), "result").await,
        "unknown"
    );
    display.screenshots("display-resolved").await;

    // "Changer de terminal" asks first; cancel keeps everything.
    display.click(&tid("display-reset")).await;
    display
        .wait_for(
            &format!("{}.checkVisibility()", q(&tid("display-reset-confirm"))),
            "the confirmation",
        )
        .await;
    display.screenshots("display-reset-ask").await;
    display.click(&tid("display-reset-cancel")).await;
    assert_eq!(display.eval("localStorage.length > 0 && !!Object.keys(localStorage).find(k => k.endsWith('token'))").await, json!(true));
    assert_eq!(
        display.data(&tid("connection-status"), "state").await,
        "authenticated"
    );
    display.click(&tid("display-reset")).await;
    display.click(&tid("display-reset-confirm")).await;
    display
        .wait_for(
            &format!("{}.checkVisibility()", q(&tid("auth-form"))),
            "the sign-in form again",
        )
        .await;
}

/// Bug 3: after « Nouveau paiement » focus sat on keypad "7", and Enter typed a 7.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enter_after_a_new_payment_pays_the_amount_typed() {
    let Some(shop) = Shop::open("enter_after_a_new_payment_pays_the_amount_typed").await else {
        return;
    };
    let page = shop.signed_in("/", CASHIER, None).await;
    pay_on_page(&page, "500").await;
    page.click(&tid("new-payment-button")).await;
    for key in ["1", "2", "4", "5", "Enter"] {
        page.press(key).await;
    }
    let (_, state) = result_card(&page).await;
    assert_eq!(state, "approved");
    assert_eq!(page.data(&tid("amount-display"), "amount").await, "1245");
    assert!(page.text("#progress-title").await.contains("12,45"));
}

/// Bug 5: cut amounts on a phone, tables scrolling sideways and a long amount overflowing
/// the display on a tablet. Element boxes are checked, not only the page's width.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_cut_or_sticks_out_at_phone_and_tablet_widths() {
    let Some(shop) = Shop::open("nothing_is_cut_or_sticks_out_at_phone_and_tablet_widths").await
    else {
        return;
    };
    let pos = shop.signed_in("/", CASHIER, None).await;
    let display = paired_display(&shop).await;
    for amount in ["123456700", "1294", "123400"] {
        pay_on_page(&pos, amount).await;
        pos.click(&tid(if amount == "1294" {
            "resolve-not-charged"
        } else {
            "new-payment-button"
        }))
        .await;
        if amount == "1294" {
            pos.click(&tid("new-payment-button")).await;
        }
    }
    start_payment(&pos, "987654300").await;
    display
        .wait_for(
            &format!(
                "{}.innerText.replace(/\\s/g, '').includes('9876543')",
                q(&tid("display-amount"))
            ),
            "the long amount",
        )
        .await;
    result_card(&pos).await;
    assert_eq!(display.overflowing().await, Vec::<String>::new(), "display");
    display.screenshots("display-long-amount").await;
    pos.click(&tid("new-payment-button")).await;
    assert_eq!(pos.overflowing().await, Vec::<String>::new(), "pos");
    pos.screenshots("pos-recent-long").await;
    let status = shop.signed_in("/status", OPERATOR, None).await;
    status
        .wait_for(
            &format!("{}?.rows.length > 3", q(&tid("transactions-table"))),
            "the transactions",
        )
        .await;
    assert_eq!(status.overflowing().await, Vec::<String>::new(), "status");
    status.screenshots("status-narrow").await;
}

/// Bug 6: a wrong pairing code showed the agent's English message on the French page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_pairing_code_is_explained_in_french() {
    let Some(shop) = Shop::open("a_wrong_pairing_code_is_explained_in_french").await else {
        return;
    };
    let page = shop.browser.page().await;
    page.goto(&shop.url("/")).await;
    page.type_into(&tid("auth-code"), "12345678").await;
    page.click(&tid("auth-submit")).await;
    let said = page
        .wait_for(
            &format!(
                "(e => !e.hidden && e.innerText.includes('incorrect') && e.innerText)({})",
                q(&tid("auth-error"))
            ),
            "the French message",
        )
        .await;
    assert!(
        said.as_str()
            .unwrap()
            .contains("Code d'appairage incorrect ou expiré"),
        "{said}"
    );
    page.screenshots("pos-wrong-code").await;
}

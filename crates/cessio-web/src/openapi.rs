//! The OpenAPI 3.1 document of `/api/v1`, built from one table of operations kept next to
//! the router. Tests call every documented operation to check that it is routed, compare
//! the document with a reviewed snapshot, and CI validates it against the OpenAPI schema.

use axum::Json;
use serde_json::{Value, json};

use crate::codes::{CODES, statuses};

/// One documented operation: method, path, id, summary, request schema, success status
/// and schema, whether it needs an `Idempotency-Key`.
#[derive(Debug)]
pub struct Op {
    pub method: &'static str,
    pub path: &'static str,
    pub id: &'static str,
    pub summary: &'static str,
    pub request: Option<&'static str>,
    pub status: u16,
    pub response: Option<&'static str>,
    pub idempotent: bool,
    pub query: &'static [(&'static str, &'static str)],
    /// A list read page by page: `limit` and `cursor`, the next page in `Link`.
    pub paged: bool,
    /// A second success: `202 Accepted` with this schema (a bulk job that goes on).
    pub accepted: Option<&'static str>,
}

const fn op(
    method: &'static str,
    path: &'static str,
    id: &'static str,
    summary: &'static str,
) -> Op {
    Op {
        method,
        path,
        id,
        summary,
        request: None,
        status: 200,
        response: None,
        idempotent: false,
        query: &[],
        paged: false,
        accepted: None,
    }
}

const MOVEMENT_QUERY: &[(&str, &str)] = &[
    ("registered_from", "date"),
    ("registered_to", "date"),
    ("answered_from", "date"),
    ("answered_to", "date"),
    ("cedente_cf", "string"),
    ("cessionario_cf", "string"),
    ("state", "string"),
    ("type_key", "string"),
    ("codice_tributo", "string"),
    ("year", "integer"),
    ("code", "string"),
    ("tracciabile", "boolean"),
    ("ceded_from", "date"),
    ("ceded_to", "date"),
    ("cedibilita", "string"),
];

pub const OPERATIONS: &[Op] = &[
    Op {
        request: Some("Login"),
        response: Some("Me"),
        ..op(
            "post",
            "/session",
            "login",
            "Accesso con nome utente e password (imposta il cookie di sessione)",
        )
    },
    Op {
        status: 204,
        ..op("delete", "/session", "logout", "Uscita")
    },
    Op {
        response: Some("Me"),
        ..op(
            "get",
            "/me",
            "me",
            "Utente collegato e soggetti per cui può operare",
        )
    },
    Op {
        request: Some("TokenRequest"),
        status: 201,
        response: Some("Token"),
        ..op(
            "post",
            "/tokens",
            "createToken",
            "Crea un token per i programmi (mostrato una sola volta)",
        )
    },
    Op {
        status: 204,
        ..op("delete", "/tokens/{id}", "revokeToken", "Revoca un token")
    },
    Op {
        response: Some("CfCheck"),
        ..op(
            "get",
            "/cf/{cf}",
            "checkCf",
            "Verifica un codice fiscale: formato (R-CF) e registrazione (R-CF-EXISTS)",
        )
    },
    Op {
        request: Some("RentInput"),
        response: Some("RentCredit"),
        ..op(
            "post",
            "/rent-credit",
            "rentCredit",
            "Calcola il credito d'imposta sui canoni (art. 28 DL 34/2020) mese per mese (R-RENT)",
        )
    },
    Op {
        request: Some("PartyRequest"),
        status: 201,
        response: Some("Party"),
        idempotent: true,
        ..op(
            "post",
            "/parties",
            "registerParty",
            "Operatore: registra un soggetto",
        )
    },
    Op {
        request: Some("UserRequest"),
        status: 201,
        response: Some("Created"),
        ..op("post", "/users", "createUser", "Operatore: crea un utente")
    },
    Op {
        status: 204,
        ..op(
            "post",
            "/users/{username}/pin-unlock",
            "unlockPin",
            "Operatore: sblocca il PIN",
        )
    },
    Op {
        request: Some("Delegation"),
        status: 204,
        ..op(
            "post",
            "/delegations",
            "delegate",
            "Operatore: registra una delega",
        )
    },
    Op {
        request: Some("Delegation"),
        status: 204,
        ..op(
            "post",
            "/delegations/revoke",
            "revokeDelegation",
            "Operatore: revoca una delega",
        )
    },
    Op {
        paged: true,
        response: Some("HeldDelegations"),
        ..op(
            "get",
            "/me/delegations",
            "heldDelegations",
            "Deleghe ricevute e attive oggi: soggetto, ambito e ultimo giorno, a pagine per nome del soggetto",
        )
    },
    Op {
        paged: true,
        response: Some("Delegations"),
        ..op(
            "get",
            "/parties/{cf}/delegations",
            "partyDelegations",
            "Deleghe concesse dal soggetto, attive e passate, con chi le ha concesse o revocate e quando (titolare o operatore), a pagine dalla più recente",
        )
    },
    Op {
        request: Some("GrantDelegationRequest"),
        status: 201,
        response: Some("DelegationReceipt"),
        idempotent: true,
        ..op(
            "post",
            "/parties/{cf}/delegations",
            "grantDelegation",
            "Il titolare delega un intermediario, per consultazione o anche disposizione, fino a un giorno (incluso) o fino a revoca, con PIN (R-DELEGA-SCOPE, R-DELEGA-END); sostituisce la delega attiva dello stesso intermediario",
        )
    },
    Op {
        request: Some("RevokeDelegationRequest"),
        response: Some("DelegationReceipt"),
        idempotent: true,
        ..op(
            "post",
            "/parties/{cf}/delegations/revoke",
            "revokePartyDelegation",
            "Il titolare revoca la delega di un intermediario, con PIN; ha effetto subito",
        )
    },
    Op {
        request: Some("OptionInput"),
        status: 201,
        response: Some("Credit"),
        idempotent: true,
        ..op(
            "post",
            "/communications",
            "communicateOption",
            "F8: comunicazione dell'opzione (R-OPT-STOP)",
        )
    },
    Op {
        status: 202,
        response: Some("BulkJob"),
        ..op(
            "post",
            "/jobs/import",
            "submitImportJob",
            "F8 massivo come lavoro: il file CSV (come per /communications/bulk) è il corpo, il PIN nell'intestazione X-Cessio-Pin; risponde subito con il lavoro (Location), che prosegue da sé. Lo stesso file inviato di nuovo prima della fine è lo stesso lavoro, che riprende da dove era; nessuna riga è registrata due volte",
        )
    },
    Op {
        response: Some("BulkJob"),
        ..op(
            "get",
            "/jobs/{id}",
            "bulkJob",
            "Un lavoro massivo: stato, righe elaborate e conteggi (al suo autore e agli operatori)",
        )
    },
    Op {
        response: Some("BulkJobRows"),
        paged: true,
        ..op(
            "get",
            "/jobs/{id}/rows",
            "bulkJobRows",
            "L'esito di ogni riga elaborata di un lavoro, in ordine di riga: ImportRow per un'importazione, AnswerJobRow per una risposta",
        )
    },
    Op {
        response: Some("ImportReport"),
        accepted: Some("BulkJob"),
        ..op(
            "post",
            "/communications/bulk",
            "importCommunications",
            "F8 massivo, come lavoro di cui si attende la fine (fino a 45 secondi: poi 202 con il lavoro da seguire): il file CSV (cf_beneficiario;tipo;anno_spesa;origine;cf_cessionario;importo;data_comunicazione, facoltative riferimento, no_tax_area, eccezione con il codice R-OPT-STOP e i suoi dati data_cilas, data_delibera, data_titolo, data_inizio_lavori, data_accordo, acconto_versato, dichiarazione_congiunta, data_preliminare, data_piano, data_domanda_contributo, data_fattura, requisito_barriere) è il corpo, il PIN nell'intestazione X-Cessio-Pin; esito riga per riga",
        )
    },
    Op {
        request: Some("PinRequest"),
        response: Some("AnswerReceipt"),
        idempotent: true,
        ..op(
            "post",
            "/communications/{id}/annul",
            "annulCommunication",
            "F8: annulla una comunicazione non ancora accettata (R-OPT-ANNUL)",
        )
    },
    Op {
        paged: true,
        response: Some("MonitorRows"),
        query: &[("as_of", "date")],
        ..op(
            "get",
            "/parties/{cf}/monitoring",
            "monitoring",
            "F1: monitoraggio per tipo e anno, anche a una data passata, a pagine per tipo e anno",
        )
    },
    Op {
        paged: true,
        response: Some("CedibleHoldings"),
        ..op(
            "get",
            "/parties/{cf}/cedible",
            "cedible",
            "F2: rate cedibili con il massimo cedibile, a pagine per rata",
        )
    },
    Op {
        request: Some("CessionRequest"),
        status: 201,
        response: Some("CessionReceipt"),
        idempotent: true,
        ..op(
            "post",
            "/parties/{cf}/cessions",
            "cede",
            "F2: cessione (anche multipla) con PIN (R-CF-EXISTS, R-PARTIAL, R-PENDING-OUT)",
        )
    },
    Op {
        paged: true,
        response: Some("IncomingGroups"),
        query: &[
            ("type_key", "string"),
            ("year", "integer"),
            ("cedente_cf", "string"),
        ],
        ..op(
            "get",
            "/parties/{cf}/incoming",
            "incoming",
            "F3: operazioni da accettare, per tipo, anno e cedente, a pagine in quest'ordine; oltre 1.000 operazioni occorrono i filtri (R-1000)",
        )
    },
    Op {
        request: Some("AnswerRequest"),
        response: Some("AnswerReceipt"),
        idempotent: true,
        ..op(
            "post",
            "/parties/{cf}/incoming/answer",
            "answer",
            "F3: accetta o rifiuta un gruppo o tutto (R-ANSWER, R-WAIT5)",
        )
    },
    Op {
        request: Some("AnswerCodesRequest"),
        response: Some("BulkAnswerReport"),
        idempotent: true,
        ..op(
            "post",
            "/parties/{cf}/incoming/answer-codes",
            "answerCodes",
            "F3: accetta o rifiuta un elenco di protocolli o codici univoci (fino a 10.000), ogni riga con il suo esito; le righe valide in un'unica operazione (R-ANSWER, R-SUSP, R-WAIT5)",
        )
    },
    Op {
        request: Some("AnswerJobRequest"),
        status: 202,
        response: Some("BulkJob"),
        ..op(
            "post",
            "/parties/{cf}/incoming/answer-jobs",
            "submitAnswerJob",
            "F3 come lavoro: accetta o rifiuta un elenco di protocolli o codici univoci (fino a 100.000), a parti di 1.000 righe, ognuna un'operazione; ogni riga con il suo esito (R-ANSWER, R-SUSP, R-WAIT5). Lo stesso elenco inviato di nuovo prima della fine è lo stesso lavoro",
        )
    },
    Op {
        response: Some("MovementRows"),
        query: MOVEMENT_QUERY,
        paged: true,
        ..op(
            "get",
            "/parties/{cf}/movements",
            "movements",
            "F4: lista movimenti in ordine di registrazione, a pagine (limit, cursor; la pagina seguente nell'intestazione Link), fino a 50.000 righe (R-50000)",
        )
    },
    Op {
        query: MOVEMENT_QUERY,
        ..op(
            "get",
            "/parties/{cf}/movements.csv",
            "movementsCsv",
            "F4: esportazione CSV, al massimo 50.000 righe (R-50000)",
        )
    },
    Op {
        response: Some("EventPage"),
        query: &[
            ("after", "string"),
            ("limit", "page_limit"),
            ("wait", "wait_seconds"),
        ],
        ..op(
            "get",
            "/parties/{cf}/events",
            "events",
            "Eventi del soggetto in ordine di registrazione dopo il cursore after (senza: dal primo; end: solo i futuri), al più limit (da 1 a 1.000); con wait (secondi, al più 30) attende il primo se non ce ne sono. Ogni risposta porta il cursore della lettura seguente",
        )
    },
    Op {
        request: Some("WebhookRequest"),
        status: 201,
        response: Some("WebhookCreated"),
        ..op(
            "post",
            "/parties/{cf}/webhooks",
            "subscribeWebhook",
            "Iscrive un indirizzo (https://) agli eventi del soggetto da ora in poi: ogni consegna è un POST JSON firmato (Cessio-Signature: t=…,v1=HMAC-SHA256 di \"t.corpo\" con il segreto, mostrato solo qui), almeno una volta, ritentata con attese crescenti; al più 10 indirizzi attivi per soggetto",
        )
    },
    Op {
        response: Some("WebhookList"),
        ..op(
            "get",
            "/parties/{cf}/webhooks",
            "webhooks",
            "Gli indirizzi iscritti agli eventi del soggetto e lo stato delle consegne: errori consecutivi, ultimo esito, prossimo tentativo",
        )
    },
    Op {
        status: 204,
        ..op(
            "delete",
            "/parties/{cf}/webhooks/{id}",
            "revokeWebhook",
            "Revoca un indirizzo: non riceve più eventi",
        )
    },
    Op {
        ..op(
            "get",
            "/parties/{cf}/operations/{id}/receipt.pdf",
            "operationReceipt",
            "Ricevuta in PDF di un'operazione dispositiva del soggetto ({id}: operation_id della risposta): protocollo, data e ora, soggetti, rate con codice univoco, importi, posizione e hash nel registro; 404 se l'operazione non riguarda il soggetto",
        )
    },
    Op {
        ..op("get", "/openapi.json", "openapi", "Questo documento")
    },
    Op {
        request: Some("DeceasedRequest"),
        response: Some("Party"),
        ..op(
            "post",
            "/operator/parties/{cf}/deceased",
            "setDeceased",
            "Operatore: anagrafe, soggetto deceduto (regola di rischio)",
        )
    },
    Op {
        request: Some("BankClientRequest"),
        status: 201,
        response: Some("BankClient"),
        ..op(
            "post",
            "/operator/bank-clients",
            "setBankClient",
            "Operatore: correntista di una banca, consumatore o no (R-BANK-CLIENT); relation no chiude il rapporto",
        )
    },
    Op {
        paged: true,
        response: Some("BankClients"),
        ..op(
            "get",
            "/operator/banks/{cf}/clients",
            "bankClients",
            "Operatore: correntisti attuali di una banca, a pagine per codice fiscale del correntista (R-BANK-CLIENT)",
        )
    },
    Op {
        request: Some("SuspendRequest"),
        status: 201,
        response: Some("Suspension"),
        ..op(
            "post",
            "/operator/suspensions",
            "suspend",
            "Operatore: sospende una comunicazione in attesa entro 5 giorni lavorativi, per al massimo 30 giorni (R-SUSP)",
        )
    },
    Op {
        paged: true,
        response: Some("Suspensions"),
        query: &[("open_only", "boolean")],
        ..op(
            "get",
            "/operator/suspensions",
            "suspensions",
            "Operatore: sospensioni, a pagine per comunicazione (R-SUSP)",
        )
    },
    Op {
        request: Some("SuspensionEndRequest"),
        response: Some("Suspension"),
        idempotent: true,
        ..op(
            "post",
            "/operator/suspensions/{transfer}/end",
            "endSuspension",
            "Operatore: esito della sospensione, rilasciata o non effettuata (R-SUSP)",
        )
    },
    Op {
        paged: true,
        response: Some("RiskHits"),
        query: &[
            ("party_cf", "string"),
            ("since", "date"),
            ("rule", "string"),
        ],
        ..op(
            "get",
            "/operator/risk-hits",
            "riskHits",
            "Operatore: esiti delle regole di rischio su ogni comunicazione, a pagine dal più vecchio",
        )
    },
    Op {
        request: Some("SeizeRequest"),
        status: 201,
        response: Some("Seizure"),
        idempotent: true,
        ..op(
            "post",
            "/operator/seizures",
            "seize",
            "Operatore: sequestro della rata di un titolare (R-SEIZE)",
        )
    },
    Op {
        request: Some("SeizureReleaseRequest"),
        response: Some("Seizure"),
        idempotent: true,
        ..op(
            "post",
            "/operator/seizures/release",
            "releaseSeizure",
            "Operatore: dissequestro; la scadenza d'uso si sposta della durata del sequestro (R-SEIZE)",
        )
    },
    Op {
        request: Some("AnnulmentRequest"),
        status: 201,
        response: Some("AnnulmentReceipt"),
        idempotent: true,
        ..op(
            "post",
            "/operator/annulments",
            "annulAcceptance",
            "Operatore: annulla su richiesta delle parti un'accettazione non ancora utilizzata né ceduta",
        )
    },
    Op {
        paged: true,
        response: Some("F24AvailabilityRows"),
        ..op(
            "get",
            "/parties/{cf}/f24-availability",
            "f24Availability",
            "F5: per codice tributo e anno, quanto si può utilizzare in F24 oggi, a pagine per codice tributo e anno",
        )
    },
    Op {
        paged: true,
        response: Some("ChoiceRows"),
        ..op(
            "get",
            "/parties/{cf}/f24-choices",
            "f24Choices",
            "F5: scelta di utilizzo in F24 di ogni rata, a pagine per rata (R-F24-CHOICE)",
        )
    },
    Op {
        request: Some("ChoiceRequest"),
        response: Some("ChoiceReceipt"),
        idempotent: true,
        ..op(
            "post",
            "/parties/{cf}/f24-choices/{rata}",
            "f24Choice",
            "F5: dichiara (declare true) o revoca la scelta di utilizzo in F24 (R-F24-CHOICE)",
        )
    },
    Op {
        request: Some("F24Request"),
        status: 201,
        response: Some("F24Reservation"),
        idempotent: true,
        ..op(
            "post",
            "/parties/{cf}/f24",
            "reserveF24",
            "F5: prenota un modello F24, scartato per intero se una riga supera il disponibile (R-F24-OVER)",
        )
    },
    Op {
        request: Some("PinRequest"),
        response: Some("F24Outcome"),
        idempotent: true,
        ..op(
            "post",
            "/parties/{cf}/f24/{id}/confirm",
            "confirmF24",
            "F5: F24 eseguito, gli importi prenotati sono utilizzati",
        )
    },
    Op {
        request: Some("PinRequest"),
        response: Some("F24Outcome"),
        idempotent: true,
        ..op(
            "post",
            "/parties/{cf}/f24/{id}/discard",
            "discardF24",
            "F5: F24 scartato, gli importi prenotati tornano disponibili",
        )
    },
    Op {
        request: Some("SplitPreviewRequest"),
        response: Some("SplitPreview"),
        ..op(
            "post",
            "/parties/{cf}/split/preview",
            "splitPreview",
            "F6: riepilogo delle dieci rate (anno, importo, ultimo giorno, codice tributo); non registra nulla (R-SPLIT-ELIGIBLE, R-SPLIT-CENTS)",
        )
    },
    Op {
        request: Some("SplitRequest"),
        status: 201,
        response: Some("SplitReceipt"),
        idempotent: true,
        ..op(
            "post",
            "/parties/{cf}/split",
            "splitRata",
            "F6: ripartisce il residuo di una rata (o parte) in dieci rate annuali, non cedibili (R-SPLIT-NOCEDE)",
        )
    },
    Op {
        request: Some("PinRequest"),
        response: Some("SplitAnnulReceipt"),
        idempotent: true,
        ..op(
            "post",
            "/parties/{cf}/split/{id}/annul",
            "annulSplit",
            "F6: annulla la ripartizione {id} se nessuna rata è utilizzata o prenotata (R-SPLIT-ANNUL)",
        )
    },
    Op {
        request: Some("ReductionRequest"),
        status: 201,
        response: Some("ReductionReceipt"),
        idempotent: true,
        ..op(
            "post",
            "/parties/{cf}/reductions",
            "reduce",
            "F7: riduzione del credito, entro 30 giorni dalla conoscenza e nei limiti del residuo",
        )
    },
    Op {
        request: Some("DebtPosition"),
        response: Some("DebtPositionReceipt"),
        idempotent: true,
        ..op(
            "put",
            "/parties/{cf}/debt-position",
            "setDebtPosition",
            "Operatore: posizione debitoria scaduta del soggetto (R-BAN-100K, R-BAN-1500)",
        )
    },
    Op {
        response: Some("CloseYearReport"),
        idempotent: true,
        ..op(
            "post",
            "/close-year/{year}",
            "closeYear",
            "Operatore: chiusura dell'anno, gli importi non utilizzati scadono (R-F24-WINDOW-121/122)",
        )
    },
];

/// A link from an operation's success to the operations its response names (OpenAPI
/// links): what a client, or Schemathesis in its stateful phase, calls next with it.
#[derive(Debug)]
pub struct Link {
    pub from: &'static str,
    pub name: &'static str,
    pub to: &'static str,
    /// The target's parameters: name and runtime expression.
    pub parameters: &'static [(&'static str, &'static str)],
}

const SAME_PARTY: (&str, &str) = ("cf", "$request.path.cf");

pub const LINKS: &[Link] = &[
    Link {
        from: "createToken",
        name: "RevokeToken",
        to: "revokeToken",
        parameters: &[("id", "$response.body#/id")],
    },
    Link {
        from: "communicateOption",
        name: "Receipt",
        to: "operationReceipt",
        parameters: &[
            ("cf", "$request.body#/beneficiary_cf"),
            ("id", "$response.body#/operation_id"),
        ],
    },
    Link {
        from: "cede",
        name: "Receipt",
        to: "operationReceipt",
        parameters: &[SAME_PARTY, ("id", "$response.body#/operation_id")],
    },
    Link {
        from: "answer",
        name: "Receipt",
        to: "operationReceipt",
        parameters: &[SAME_PARTY, ("id", "$response.body#/operation_id")],
    },
    Link {
        from: "answerCodes",
        name: "Receipt",
        to: "operationReceipt",
        parameters: &[SAME_PARTY, ("id", "$response.body#/operation_id")],
    },
    Link {
        from: "submitImportJob",
        name: "Job",
        to: "bulkJob",
        parameters: &[("id", "$response.body#/id")],
    },
    Link {
        from: "submitImportJob",
        name: "JobRows",
        to: "bulkJobRows",
        parameters: &[("id", "$response.body#/id")],
    },
    Link {
        from: "submitAnswerJob",
        name: "Job",
        to: "bulkJob",
        parameters: &[("id", "$response.body#/id")],
    },
    Link {
        from: "submitAnswerJob",
        name: "JobRows",
        to: "bulkJobRows",
        parameters: &[("id", "$response.body#/id")],
    },
    Link {
        from: "bulkJob",
        name: "JobRows",
        to: "bulkJobRows",
        parameters: &[("id", "$request.path.id")],
    },
    Link {
        from: "events",
        name: "NextEvents",
        to: "events",
        parameters: &[SAME_PARTY, ("after", "$response.body#/after")],
    },
    Link {
        from: "subscribeWebhook",
        name: "RevokeWebhook",
        to: "revokeWebhook",
        parameters: &[SAME_PARTY, ("id", "$response.body#/webhook/id")],
    },
    Link {
        from: "subscribeWebhook",
        name: "Webhooks",
        to: "webhooks",
        parameters: &[SAME_PARTY],
    },
    Link {
        from: "reserveF24",
        name: "ConfirmF24",
        to: "confirmF24",
        parameters: &[SAME_PARTY, ("id", "$response.body#/reservation")],
    },
    Link {
        from: "reserveF24",
        name: "DiscardF24",
        to: "discardF24",
        parameters: &[SAME_PARTY, ("id", "$response.body#/reservation")],
    },
    Link {
        from: "splitRata",
        name: "AnnulSplit",
        to: "annulSplit",
        parameters: &[SAME_PARTY, ("id", "$response.body#/split_credit")],
    },
    Link {
        from: "splitRata",
        name: "Receipt",
        to: "operationReceipt",
        parameters: &[SAME_PARTY, ("id", "$response.body#/operation_id")],
    },
    Link {
        from: "reduce",
        name: "Receipt",
        to: "operationReceipt",
        parameters: &[SAME_PARTY, ("id", "$response.body#/operation_id")],
    },
];

/// An F24 debit line: the section, the codice tributo or causale, the amount.
fn debit_line() -> Value {
    obj(
        json!({
            "section": { "type": "string", "enum": ["erario", "inps", "regioni", "imu_locali", "inail"] },
            "code": { "type": "string", "description": "Codice tributo (four characters) or causale (INPS two to four, INAIL one letter)" },
            "amount": { "type": "integer", "description": "Euro cents" }
        }),
        &["section", "code", "amount"],
    )
}

/// One month of the rent calculator's input (R-RENT).
fn rent_month() -> Value {
    let c = json!({ "$ref": "#/components/schemas/Cents" });
    obj(
        json!({
            "month": { "type": "integer", "minimum": 1, "maximum": 12 }, "rent": c,
            "turnover_before": c, "turnover": c,
            "paid_on": { "type": ["string", "null"], "format": "date" }
        }),
        &["month", "rent", "turnover_before", "turnover"],
    )
}

/// One month's outcome of the rent calculator: the credit, or why there is none.
fn rent_outcome() -> Value {
    let c = json!({ "$ref": "#/components/schemas/Cents" });
    json!({ "oneOf": [
        obj(json!({
            "outcome": { "type": "string", "enum": ["eligible"] }, "credit": c,
            "usable_from": { "type": ["string", "null"], "format": "date", "description": "Utilizzabile dal pagamento del canone; null finché non è pagato" }
        }), &["outcome", "credit"]),
        obj(json!({
            "outcome": { "type": "string", "enum": ["not_eligible"] },
            "kind": { "type": "string", "enum": ["no_rent", "revenue_over_limit", "no_turnover_before", "insufficient_drop"] },
            "revenue": c, "limit": c,
            "drop_percent": { "type": "integer", "description": "Calo del fatturato in punti percentuali, arrotondato per difetto (negativo se è cresciuto)" },
            "min_percent": { "type": "integer" }
        }), &["outcome", "kind"])
    ] })
}

fn obj(props: Value, required: &[&str]) -> Value {
    json!({ "type": "object", "properties": props, "required": required })
}

/// R-OPT-STOP's exception as the API takes it: a code from `catalogue/opt_stop.toml` and the
/// typed facts it needs. The codes and their labels are read from the embedded table, so the
/// document cannot list a code the service would refuse, nor miss one it accepts.
fn opt_stop_exception_schema() -> Value {
    use cessio_core::opt_stop::{BarriereSubject, Fact, MAX_CODE_CHARS, OptStopTable};
    let table = OptStopTable::builtin().ok();
    let exceptions = table.as_ref().map(|t| t.exceptions()).unwrap_or_default();
    let codes: Vec<&str> = exceptions.iter().map(|e| e.code.as_str()).collect();
    let listed: Vec<String> = exceptions
        .iter()
        .map(|e| {
            let facts: Vec<&str> = e.facts().iter().map(|f| f.api_name()).collect();
            if facts.is_empty() {
                format!("{}: {} (nessun dato)", e.code, e.label)
            } else {
                format!("{}: {} (dati: {})", e.code, e.label, facts.join(", "))
            }
        })
        .collect();
    let mut props = serde_json::Map::new();
    props.insert(
        "code".into(),
        json!({
            "type": "string", "maxLength": MAX_CODE_CHARS, "enum": codes,
            "description": format!("Codice dell'eccezione del DL 11/2023 art. 2 (R-OPT-STOP); il testo libero non è un'eccezione. {}", listed.join("; "))
        }),
    );
    for fact in Fact::ALL {
        let schema = match fact {
            Fact::DepositPaid | Fact::JointDeclaration => {
                json!({ "type": "boolean", "default": false, "description": fact.label() })
            }
            Fact::BarriereSubject => json!({
                "type": ["string", "null"],
                "enum": BarriereSubject::ALL.iter().map(|s| Some(s.key())).chain([None]).collect::<Vec<_>>(),
                "description": fact.label()
            }),
            _ => {
                json!({ "type": ["string", "null"], "format": "date", "description": fact.label() })
            }
        };
        props.insert(fact.api_name().into(), schema);
    }
    json!({
        "type": "object", "properties": props, "required": ["code"], "additionalProperties": false,
        "description": "Eccezione al blocco delle opzioni (R-OPT-STOP): il codice e i dati che richiede, confrontati con le date dell'eccezione e con la data della comunicazione. I dati che l'eccezione non richiede sono ignorati; nessuna data può essere successiva alla comunicazione."
    })
}

/// `Problem`, its `code` one of the catalogue's, each described in `x-codes` with the
/// statuses `status_of` gives it and its rule.
fn problem() -> Value {
    let codes: Vec<&str> = CODES.iter().map(|c| c.code).collect();
    let described: serde_json::Map<String, Value> = CODES
        .iter()
        .map(|c| {
            let mut entry = json!({ "status": statuses(c), "description": c.description });
            if let Some(rule) = c.rule {
                entry["rule"] = json!(rule);
            }
            (c.code.to_string(), entry)
        })
        .collect();
    let mut schema = obj(
        json!({
            "type": { "type": "string" }, "title": { "type": "string" }, "status": { "type": "integer" },
            "code": {
                "type": "string", "enum": codes,
                "description": "Codice stabile del rifiuto: x-codes dà di ciascuno gli stati HTTP, la regola e il significato"
            },
            "detail": { "type": "string", "description": "Spiegazione in italiano" },
            "rule": { "type": "string", "description": "Regola della specifica (R-…)" }
        }),
        &["type", "title", "status", "code", "detail"],
    );
    schema["x-codes"] = Value::Object(described);
    schema
}

fn schemas() -> Value {
    let cents = json!({ "type": "integer", "format": "int64", "description": "Importo in centesimi di euro" });
    let party_ref = obj(
        json!({ "cf": { "type": "string" }, "name": { "type": ["string", "null"] } }),
        &["cf"],
    );
    json!({
        "Cents": cents,
        "Cedibilita": obj(json!({
            "class": { "type": "string", "enum": ["anyone", "once", "anyone_except_banks", "qualified_only", "own_bank_clients_only", "not_cedible"] },
            "label": { "type": "string" }, "rule": { "type": ["string", "null"] }, "reason": { "type": ["string", "null"] }
        }), &["class", "label"]),
        "DeceasedRequest": obj(json!({ "deceased": { "type": "boolean" } }), &["deceased"]),
        "BankClientRequest": obj(json!({
            "bank_cf": { "type": "string" }, "client_cf": { "type": "string" },
            "relation": { "type": "string", "enum": ["no", "consumer", "non_consumer", "professional"] }
        }), &["bank_cf", "client_cf", "relation"]),
        "BankClient": obj(json!({
            "bank_cf": { "type": "string" }, "client_cf": { "type": "string" },
            "relation": { "type": "string", "enum": ["no", "consumer", "non_consumer", "professional"] },
            "recorded_at": { "type": "string", "format": "date-time" }
        }), &["bank_cf", "client_cf", "relation", "recorded_at"]),
        "BankClients": { "type": "array", "items": { "$ref": "#/components/schemas/BankClient" } },
        "SuspendRequest": obj(json!({ "transfer": { "type": "integer" }, "days": { "type": "integer", "minimum": 1, "maximum": 30 }, "reason": { "type": "string" } }), &["transfer", "days", "reason"]),
        "SuspensionEndRequest": obj(json!({ "outcome": { "type": "string", "enum": ["released", "voided"] } }), &["outcome"]),
        "Suspension": obj(json!({
            "transfer": { "type": "integer" }, "rata": { "type": "integer" }, "kind": { "type": "string" },
            "cedente_cf": { "type": "string" }, "cessionario_cf": { "type": "string" }, "amount": { "$ref": "#/components/schemas/Cents" },
            "registered_at": { "type": "string", "format": "date-time" }, "from": { "type": "string", "format": "date" },
            "until": { "type": "string", "format": "date" }, "reason": { "type": "string" }, "risk_rule": { "type": ["string", "null"] },
            "state": { "type": "string", "enum": ["suspended", "released", "voided"] },
            "ended_at": { "type": ["string", "null"], "format": "date-time" }
        }), &["transfer", "from", "until", "state"]),
        "Suspensions": { "type": "array", "items": { "$ref": "#/components/schemas/Suspension" } },
        "RiskHits": { "type": "array", "items": obj(json!({
            "id": { "type": "integer" }, "at": { "type": "string", "format": "date-time" }, "transfer": { "type": ["integer", "null"] },
            "cedente_cf": { "type": "string" }, "cessionario_cf": { "type": "string" },
            "rule": { "type": "string", "enum": ["risk_party_unknown", "risk_party_deceased", "risk_amount_above_history", "risk_cycle", "risk_velocity"] },
            "reason": { "type": "string" }, "suspended": { "type": "boolean" }
        }), &["id", "at", "rule", "reason", "suspended"]) },
        "SeizeRequest": obj(json!({ "holder_cf": { "type": "string" }, "rata": { "type": "integer" }, "reference": { "type": "string" } }), &["holder_cf", "rata", "reference"]),
        "SeizureReleaseRequest": obj(json!({ "holder_cf": { "type": "string" }, "rata": { "type": "integer" } }), &["holder_cf", "rata"]),
        "Seizure": obj(json!({
            "rata": { "type": "integer" }, "holder_cf": { "type": "string" }, "seized": { "$ref": "#/components/schemas/Cents" },
            "extension_days": { "type": "integer" }, "operation_id": { "type": "integer" }, "replayed": { "type": "boolean" }
        }), &["rata", "holder_cf", "seized", "extension_days"]),
        "AnnulmentRequest": obj(json!({ "transfer": { "type": "integer" }, "reference": { "type": "string" } }), &["transfer", "reference"]),
        "AnnulmentReceipt": obj(json!({
            "operation_id": { "type": "integer" }, "transfer": { "type": "integer" }, "amount": { "$ref": "#/components/schemas/Cents" },
            "reference": { "type": "string" }, "replayed": { "type": "boolean" }
        }), &["operation_id", "transfer", "amount", "reference"]),
        "Problem": problem(),
        "Login": obj(json!({ "username": { "type": "string" }, "password": { "type": "string" } }), &["username", "password"]),
        "Me": obj(json!({ "user": { "$ref": "#/components/schemas/User" }, "parties": { "type": "array", "items": { "$ref": "#/components/schemas/Party" } } }), &["user", "parties"]),
        "User": obj(json!({
            "user_id": { "type": "integer" }, "username": { "type": "string" }, "display_name": { "type": "string" },
            "role": { "type": "string", "enum": ["user", "operator"] },
            "party": { "type": ["integer", "null"], "description": "Il soggetto dell'utente, se ne ha uno" },
            "method": { "type": "string", "enum": ["password", "strong", "token"], "description": "Come si è autenticato: password, SPID/CIE (strong) o token" }
        }), &["user_id", "username", "display_name", "role", "method"]),
        "Created": obj(json!({ "id": { "type": "integer", "description": "L'identificativo di ciò che è stato creato" } }), &["id"]),
        "TokenRequest": obj(json!({ "name": { "type": "string" } }), &["name"]),
        "Token": obj(json!({ "id": { "type": "integer" }, "token": { "type": "string" } }), &["id", "token"]),
        "CfCheck": obj(json!({ "cf": { "type": "string" }, "valid": { "type": "boolean" }, "registered": { "type": "boolean" }, "message": { "type": ["string", "null"] } }), &["cf", "valid", "registered"]),
        "Party": obj(json!({ "id": { "type": "integer" }, "cf": { "type": "string" }, "name": { "type": "string" }, "kind": { "$ref": "#/components/schemas/PartyKind" } }), &["id", "cf", "name", "kind"]),
        "PartyKind": { "type": "string", "enum": ["person", "company", "bank", "financial_intermediary", "insurer", "public_administration"] },
        "PartyRequest": obj(json!({ "cf": { "type": "string" }, "name": { "type": "string" }, "kind": { "$ref": "#/components/schemas/PartyKind" } }), &["cf", "name", "kind"]),
        "UserRequest": obj(json!({
            "username": { "type": "string" }, "display_name": { "type": "string" }, "password": { "type": "string", "minLength": 12 },
            "pin": { "type": "string", "pattern": "^[0-9]{6,12}$" }, "party_cf": { "type": ["string", "null"] },
            "role": { "type": "string", "enum": ["user", "operator"] }
        }), &["username", "display_name", "password", "pin", "role"]),
        "Delegation": obj(json!({
            "username": { "type": "string" }, "party_cf": { "type": "string" },
            "scope": { "oneOf": [{ "$ref": "#/components/schemas/DelegationScope" }, { "type": "null" }], "description": "disposizione se assente" },
            "until": { "type": ["string", "null"], "format": "date", "description": "Ultimo giorno di validità, incluso; assente: fino a revoca" }
        }), &["username", "party_cf"]),
        "DelegationScope": { "type": "string", "enum": ["consultazione", "disposizione"], "description": "consultazione: vede crediti ed elenchi; disposizione: anche cede, accetta, comunica, usa in F24, suddivide" },
        "GrantDelegationRequest": obj(json!({
            "username": { "type": "string", "description": "Nome utente dell'intermediario" },
            "scope": { "$ref": "#/components/schemas/DelegationScope" },
            "until": { "type": ["string", "null"], "format": "date", "description": "Ultimo giorno di validità, incluso (ora di Roma); assente: fino a revoca" },
            "pin": { "type": ["string", "null"] }
        }), &["username", "scope"]),
        "RevokeDelegationRequest": obj(json!({ "username": { "type": "string" }, "pin": { "type": ["string", "null"] } }), &["username"]),
        "DelegationReceipt": obj(json!({
            "operation_id": { "type": "integer" }, "at": { "type": "string", "format": "date-time" }, "replayed": { "type": "boolean" },
            "party_cf": { "type": "string" }, "delegate_username": { "type": "string" },
            "scope": { "oneOf": [{ "$ref": "#/components/schemas/DelegationScope" }, { "type": "null" }], "description": "null per una revoca" },
            "until": { "type": ["string", "null"], "format": "date" }
        }), &["operation_id", "at", "replayed", "party_cf", "delegate_username"]),
        "Delegations": { "type": "array", "items": obj(json!({
            "id": { "type": "integer" }, "delegate_username": { "type": "string" }, "delegate_name": { "type": "string" },
            "party_cf": { "type": "string" }, "scope": { "$ref": "#/components/schemas/DelegationScope" },
            "until": { "type": ["string", "null"], "format": "date" },
            "state": { "type": "string", "enum": ["active", "expired", "revoked"] },
            "granted_at": { "type": "string", "format": "date-time" }, "granted_by": { "type": ["string", "null"] },
            "revoked_at": { "type": ["string", "null"], "format": "date-time" }, "revoked_by": { "type": ["string", "null"] }
        }), &["id", "delegate_username", "scope", "state", "granted_at"]) },
        "HeldDelegations": { "type": "array", "items": obj(json!({
            "party": { "$ref": "#/components/schemas/Party" }, "scope": { "$ref": "#/components/schemas/DelegationScope" },
            "until": { "type": ["string", "null"], "format": "date" }, "granted_at": { "type": "string", "format": "date-time" }
        }), &["party", "scope", "granted_at"]) },
        "PinRequest": obj(json!({ "pin": { "type": ["string", "null"] } }), &[]),
        "OptionInput": obj(json!({
            "beneficiary_cf": { "type": "string" }, "type_key": { "type": "string" }, "expense_year": { "type": "integer" },
            "origin": { "type": "string", "enum": ["cessione", "sconto"] }, "holder_cf": { "type": "string" },
            "total": { "$ref": "#/components/schemas/Cents" }, "communicated_on": { "type": ["string", "null"], "format": "date" },
            "exception": { "oneOf": [{ "$ref": "#/components/schemas/OptStopException" }, { "type": "null" }], "description": "Obbligatoria per i bonus edilizi comunicati dal 17/02/2023 (R-OPT-STOP)" },
            "pin": { "type": ["string", "null"] },
            "no_tax_area": { "type": ["boolean", "null"], "description": "Beneficiario nella no tax area (R-ECO-2018)" }
        }), &["beneficiary_cf", "type_key", "expense_year", "origin", "holder_cf", "total"]),
        "OptStopException": opt_stop_exception_schema(),
        "ImportReport": obj(json!({
            "registered": { "type": "integer" }, "already_registered": { "type": "integer" }, "refused": { "type": "integer" },
            "rows": { "type": "array", "items": { "$ref": "#/components/schemas/ImportRow" } }
        }), &["registered", "already_registered", "refused", "rows"]),
        "ImportRow": obj(json!({
            "line": { "type": "integer" }, "reference": { "type": ["string", "null"] }, "protocol": { "type": ["string", "null"] },
            "already_registered": { "type": "boolean" }, "code": { "type": ["string", "null"] }, "message": { "type": ["string", "null"] }
        }), &["line", "already_registered"]),
        "BulkJob": obj(json!({
            "id": { "type": "integer" },
            "kind": { "type": "string", "enum": ["import", "answer"] },
            "owner": { "type": "string", "description": "Chi l'ha inviato: user:ID, o console" },
            "party": { "type": ["integer", "null"], "description": "Per una risposta: il soggetto che risponde" },
            "accept": { "type": ["boolean", "null"], "description": "Per una risposta: accetta (true) o rifiuta" },
            "state": { "type": "string", "enum": ["queued", "running", "done", "failed"], "description": "failed: fermato da un errore che non è di una riga; inviarlo di nuovo lo riprende" },
            "total_rows": { "type": "integer" }, "done_rows": { "type": "integer" },
            "applied": { "type": "integer", "description": "Righe eseguite da questo lavoro" },
            "already": { "type": "integer", "description": "Righe trovate già eseguite" },
            "refused": { "type": "integer" },
            "error": { "type": ["string", "null"] },
            "created_at": { "type": "string", "format": "date-time" }, "updated_at": { "type": "string", "format": "date-time" },
            "finished_at": { "type": ["string", "null"], "format": "date-time" },
            "submissions": { "type": "integer", "description": "Quante volte lo stesso contenuto è stato inviato" }
        }), &["id", "kind", "state", "total_rows", "done_rows", "applied", "already", "refused", "created_at", "submissions"]),
        "BulkJobRows": { "type": "array", "items": { "oneOf": [
            { "$ref": "#/components/schemas/ImportRow" },
            { "$ref": "#/components/schemas/AnswerJobRow" }
        ] } },
        "AnswerJobRequest": obj(json!({
            "accept": { "type": "boolean" },
            "codes": { "type": "array", "minItems": 1, "maxItems": cessio_app::ANSWER_JOB_MAX_ROWS, "items": { "type": "string", "description": "Protocollo della comunicazione o codice univoco della rata" } },
            "pin": { "type": ["string", "null"] }
        }), &["accept", "codes"]),
        "AnswerJobRow": obj(json!({
            "line": { "type": "integer" }, "code": { "type": "string" },
            "operations": { "type": "integer" }, "amount": { "$ref": "#/components/schemas/Cents" },
            "operation_id": { "type": ["integer", "null"], "description": "L'operazione che ha risposto: la sua ricevuta è GET /parties/{cf}/operations/{operation_id}/receipt.pdf" },
            "already_answered": { "type": "boolean", "description": "La parte era già stata eseguita prima che il lavoro si fermasse" },
            "error": { "oneOf": [{ "type": "null" }, obj(json!({
                "code": { "type": "string", "description": "not_awaiting, r_susp_suspended (R-SUSP), answer_too_early (R-WAIT5)" },
                "rule": { "type": ["string", "null"] }, "message": { "type": "string" }
            }), &["code", "message"])] }
        }), &["line", "code", "operations", "amount", "already_answered"]),
        "Credit": obj(json!({
            "id": { "type": "integer" }, "protocol": { "type": "string" }, "type_key": { "type": "string" },
            "operation_id": { "type": "integer", "description": "L'operazione che ha registrato la comunicazione: la sua ricevuta è GET /parties/{cf}/operations/{operation_id}/receipt.pdf" },
            "beneficiary": { "type": "integer", "description": "Il soggetto beneficiario della detrazione" },
            "holder": { "type": "integer", "description": "Il primo cessionario o fornitore" },
            "origin": { "type": "string", "enum": ["cessione", "sconto", "granted"] },
            "expense_year": { "type": "integer" }, "communicated_on": { "type": "string", "format": "date" },
            "created_at": { "type": "string", "format": "date-time" },
            "split_of": { "type": ["integer", "null"], "description": "Per le rate di una ripartizione in dieci (F6): la rata che sostituiscono" },
            "beneficiary_no_tax_area": { "type": "boolean", "description": "Beneficiario nella no tax area (R-ECO-2018)" },
            "tracciabile": { "type": "boolean" }, "rate": { "type": "array", "items": obj(json!({
                "id": { "type": "integer" }, "credit": { "type": "integer" }, "index": { "type": "integer" },
                "year": { "type": "integer" }, "amount": { "$ref": "#/components/schemas/Cents" },
                "codice_tributo": { "type": "string" }, "codice_univoco": { "type": "string" }
            }), &["id", "credit", "index", "year", "amount", "codice_tributo", "codice_univoco"]) }
        }), &["id", "operation_id", "protocol", "type_key", "tracciabile", "rate"]),
        "MonitorRows": { "type": "array", "items": obj(json!({
            "type_key": { "type": "string" }, "type_name": { "type": "string" }, "year": { "type": "integer" },
            "received_pending": { "$ref": "#/components/schemas/Cents" }, "received_accepted": { "$ref": "#/components/schemas/Cents" },
            "received_refused": { "$ref": "#/components/schemas/Cents" }, "ceded_accepted": { "$ref": "#/components/schemas/Cents" },
            "ceded_pending": { "$ref": "#/components/schemas/Cents" }, "used_done": { "$ref": "#/components/schemas/Cents" },
            "used_reserved": { "$ref": "#/components/schemas/Cents" },
            "expired": { "$ref": "#/components/schemas/Cents", "description": "Importi scaduti, spostati dalla chiusura di fine anno (R-F24-WINDOW-121/122)" },
            "residual_cedible": { "$ref": "#/components/schemas/Cents" },
            "residual_not_cedible": { "$ref": "#/components/schemas/Cents" },
            "residual_restricted": { "$ref": "#/components/schemas/Cents", "description": "Parte di residual_cedible cedibile solo a soggetti qualificati, a correntisti della banca o non a banche (§5)" }
        }), &["type_key", "year"]) },
        "CedibleHoldings": { "type": "array", "items": obj(json!({
            "rata": { "type": "integer" }, "type_key": { "type": "string" }, "year": { "type": "integer" },
            "codice_tributo": { "type": "string" }, "codice_univoco": { "type": "string" }, "protocol": { "type": "string" },
            "tracciabile": { "type": "boolean" }, "max_cedibile": { "$ref": "#/components/schemas/Cents" }, "partial_allowed": { "type": "boolean" },
            "cedibilita": { "$ref": "#/components/schemas/Cedibilita" }
        }), &["rata", "max_cedibile", "cedibilita"]) },
        "CessionRequest": obj(json!({
            "lines": { "type": "array", "items": obj(json!({
                "rata": { "type": "integer" }, "cessionario_cf": { "type": "string" },
                "amount": { "oneOf": [{ "$ref": "#/components/schemas/Cents" }, { "type": "null" }] }
            }), &["rata", "cessionario_cf"]) },
            "disclose_name": { "type": "boolean", "description": "Si autorizza il cessionario a visualizzare il nominativo del cedente: obbligatorio per proseguire (false è rifiutato con name_consent_required)" }, "pin": { "type": ["string", "null"] }
        }), &["lines", "disclose_name"]),
        "CessionReceipt": obj(json!({ "operation_id": { "type": "integer" }, "transfers": { "type": "array", "items": { "type": "integer" } }, "amount": { "$ref": "#/components/schemas/Cents" }, "replayed": { "type": "boolean" } }), &["operation_id"]),
        "IncomingGroups": { "type": "array", "items": obj(json!({
            "type_key": { "type": "string" }, "year": { "type": "integer" }, "cedente": party_ref,
            "operations": { "type": "integer" }, "amount": { "$ref": "#/components/schemas/Cents" },
            "answerable_from": { "type": ["string", "null"], "format": "date" },
            "suspended": { "type": "integer", "description": "Operazioni sospese oggi (R-SUSP)" },
            "suspended_until": { "type": ["string", "null"], "format": "date" }
        }), &["type_key", "year", "cedente", "operations", "amount"]) },
        "AnswerRequest": obj(json!({
            "accept": { "type": "boolean" }, "type_key": { "type": ["string", "null"] }, "year": { "type": ["integer", "null"] },
            "cedente_cf": { "type": ["string", "null"] }, "pin": { "type": ["string", "null"] }
        }), &["accept"]),
        "AnswerCodesRequest": obj(json!({
            "accept": { "type": "boolean" },
            "codes": { "type": "array", "minItems": 1, "maxItems": cessio_app::BULK_ANSWER_MAX_ROWS, "items": { "type": "string", "description": "Protocollo della comunicazione o codice univoco della rata" } },
            "pin": { "type": ["string", "null"] }
        }), &["accept", "codes"]),
        "BulkAnswerReport": obj(json!({
            "operation_id": { "type": ["integer", "null"] }, "accepted": { "type": "boolean" },
            "operations": { "type": "integer" }, "amount": { "$ref": "#/components/schemas/Cents" },
            "replayed": { "type": "boolean", "description": "Stessa Idempotency-Key già eseguita: i totali sono quelli della prima risposta, le righe erano in quella" },
            "rows": { "type": "array", "items": obj(json!({
                "line": { "type": "integer" }, "code": { "type": "string" },
                "operations": { "type": "integer" }, "amount": { "$ref": "#/components/schemas/Cents" },
                "error": { "oneOf": [{ "type": "null" }, obj(json!({
                    "code": { "type": "string", "description": "not_awaiting (nulla attende risposta con questo codice), r_susp_suspended (R-SUSP), answer_too_early (R-WAIT5)" },
                    "rule": { "type": ["string", "null"] }, "message": { "type": "string" }
                }), &["code", "message"])] }
            }), &["line", "code", "operations", "amount"]) }
        }), &["accepted", "operations", "amount", "replayed", "rows"]),
        "AnswerReceipt": obj(json!({ "operation_id": { "type": "integer" }, "accepted": { "type": "boolean" }, "operations": { "type": "integer" }, "amount": { "$ref": "#/components/schemas/Cents" }, "replayed": { "type": "boolean" } }), &["operation_id", "accepted"]),
        "MovementRows": { "type": "array", "items": obj(json!({
            "id": { "type": "integer" }, "credit": { "type": "integer" }, "registered_at": { "type": "string", "format": "date-time" },
            "cedente": party_ref, "cessionario": party_ref, "type_key": { "type": "string" },
            "type_name": { "type": "string", "description": "Il nome del tipo di credito in italiano" },
            "codice_tributo": { "type": "string" }, "year": { "type": "integer" }, "amount": { "$ref": "#/components/schemas/Cents" },
            "state": { "type": "string", "enum": ["in_attesa", "sospesa", "accettato", "rifiutato", "annullato", "non_effettuata", "accettazione_annullata"] },
            "suspended_until": { "type": ["string", "null"], "format": "date", "description": "Ultimo giorno della sospensione (R-SUSP), per lo stato sospesa" },
            "answered_at": { "type": ["string", "null"], "format": "date-time" },
            "protocol": { "type": "string" }, "codice_univoco": { "type": "string" }, "tracciabile": { "type": "boolean" },
            "rata": { "type": "integer" },
            "ceded_on": { "type": "string", "format": "date", "description": "Data cessione: il giorno della comunicazione dell'opzione, o quello di registrazione della cessione" },
            "cedibilita": { "type": "string", "description": "Cedibilità della rata per il soggetto oggi, come in Monitoraggio (o «nessun residuo disponibile»)" },
            "cedibilita_class": { "type": ["string", "null"], "enum": ["anyone", "once", "anyone_except_banks", "qualified_only", "own_bank_clients_only", "not_cedible", null] }
        }), &["id", "registered_at", "amount", "state"]) },
        "EventPage": event_page(),
        "WebhookRequest": obj(json!({ "url": { "type": "string", "maxLength": cessio_app::WEBHOOK_URL_MAX_CHARS, "description": "https://…; http:// solo verso 127.0.0.1 o localhost" } }), &["url"]),
        "Webhook": webhook(),
        "WebhookCreated": obj(json!({
            "webhook": { "$ref": "#/components/schemas/Webhook" },
            "secret": { "type": "string", "description": "Chiave delle firme delle consegne: mostrata solo ora" }
        }), &["webhook", "secret"]),
        "WebhookList": obj(json!({ "webhooks": { "type": "array", "items": { "$ref": "#/components/schemas/Webhook" } } }), &["webhooks"])
    })
}

/// A webhook subscription and where its deliveries stand.
fn webhook() -> Value {
    let time = || json!({ "type": "string", "format": "date-time" });
    let opt_time = || json!({ "type": ["string", "null"], "format": "date-time" });
    obj(
        json!({
            "id": { "type": "integer" }, "url": { "type": "string" },
            "created_at": time(), "created_by": { "type": "string" }, "revoked_at": opt_time(),
            "after": { "type": "string", "description": "Il cursore degli eventi da cui parte la prossima consegna" },
            "delivered": { "type": "integer", "description": "Eventi consegnati in tutto" },
            "failures": { "type": "integer", "description": "Consegne fallite di seguito: gli stessi eventi sono ritentati" },
            "next_attempt_at": time(), "last_attempt_at": opt_time(),
            "last_status": { "type": ["integer", "null"] }, "last_error": { "type": ["string", "null"] },
            "last_delivered_at": opt_time()
        }),
        &[
            "id",
            "url",
            "created_at",
            "created_by",
            "after",
            "delivered",
            "failures",
            "next_attempt_at",
        ],
    )
}

/// A read of a party's events; the types are those the app names, so that the document
/// lists every one it can send.
fn event_page() -> Value {
    let kinds: Vec<Value> = cessio_app::EventKind::ALL
        .iter()
        .filter_map(|k| serde_json::to_value(k).ok())
        .collect();
    let event = obj(
        json!({
            "id": { "type": "string", "description": "Identificativo stabile dell'evento, per non trattarlo due volte" },
            "type": { "type": "string", "enum": kinds },
            "at": { "type": "string", "format": "date-time" },
            "transfer": { "type": "integer", "description": "Il movimento (la riga di F4); per una risposta, il movimento a cui risponde" },
            "operation": { "type": ["integer", "null"], "description": "L'operazione che lo ha registrato" },
            "protocol": { "type": "string" }, "codice_univoco": { "type": "string" },
            "type_key": { "type": "string" }, "year": { "type": "integer" },
            "amount": { "$ref": "#/components/schemas/Cents" },
            "cedente": { "type": ["string", "null"], "description": "Codice fiscale del cedente, per cessioni e comunicazioni" },
            "cessionario": { "type": ["string", "null"], "description": "Codice fiscale del cessionario, per cessioni e comunicazioni" },
            "suspended_until": { "type": ["string", "null"], "format": "date", "description": "Ultimo giorno della sospensione (R-SUSP)" }
        }),
        &[
            "id",
            "type",
            "at",
            "transfer",
            "protocol",
            "codice_univoco",
            "type_key",
            "year",
            "amount",
        ],
    );
    obj(
        json!({
            "events": { "type": "array", "items": event },
            "after": { "type": "string", "description": "Il cursore della lettura seguente (anche quando non ci sono eventi)" }
        }),
        &["events", "after"],
    )
}

/// The schemas of F5, F6, F7 and the operator's debt position and year-end close
/// (`api_credits`), added to [`schemas`].
fn with_credit_schemas(mut all: Value) -> Value {
    let c = || json!({ "$ref": "#/components/schemas/Cents" });
    let pin = || json!({ "type": ["string", "null"] });
    let date = || json!({ "type": "string", "format": "date" });
    let recap = obj(
        json!({ "year": { "type": "integer" }, "amount": c(), "last_day_of_use": date(), "codice_tributo": { "type": "string" } }),
        &["year", "amount", "last_day_of_use", "codice_tributo"],
    );
    let line = obj(
        json!({ "codice_tributo": { "type": "string" }, "year": { "type": "integer" }, "amount": c() }),
        &["codice_tributo", "year", "amount"],
    );
    let add = [
        (
            "F24AvailabilityRows",
            json!({ "type": "array", "items": obj(json!({
            "codice_tributo": { "type": "string" }, "year": { "type": "integer" }, "type_key": { "type": "string" },
            "type_name": { "type": "string" }, "usable": c(), "reserved": c(),
            "pending_in_cession": { "$ref": "#/components/schemas/Cents", "description": "Ceduto e in attesa della risposta del cessionario (R-PENDING-OUT): non prenotato in F24" },
            "awaiting_choice": c(),
            "not_yet_usable": c(), "usable_from": { "type": ["string", "null"], "format": "date" },
            "last_day": { "type": ["string", "null"], "format": "date" }, "expired": c()
        }), &["codice_tributo", "year", "usable"]) }),
        ),
        (
            "ChoiceRows",
            json!({ "type": "array", "items": obj(json!({
            "rata": { "type": "integer" }, "codice_tributo": { "type": "string" }, "year": { "type": "integer" },
            "type_key": { "type": "string" }, "codice_univoco": { "type": "string" }, "tracciabile": { "type": "boolean" },
            "available": c(), "choice": { "$ref": "#/components/schemas/F24Choice" }
        }), &["rata", "choice"]) }),
        ),
        (
            "F24Choice",
            obj(
                json!({
                    "state": { "type": "string", "enum": ["not_declared", "declared", "revoked"] },
                    "on": { "type": "string", "format": "date", "description": "Giorno della scelta o della revoca (R-F24-CHOICE)" }
                }),
                &["state"],
            ),
        ),
        (
            "ChoiceRequest",
            obj(
                json!({ "declare": { "type": "boolean" }, "pin": pin() }),
                &["declare"],
            ),
        ),
        (
            "ChoiceReceipt",
            obj(
                json!({ "operation_id": { "type": "integer" }, "rata": { "type": "integer" }, "choice": { "$ref": "#/components/schemas/F24Choice" }, "replayed": { "type": "boolean" } }),
                &["operation_id", "rata"],
            ),
        ),
        (
            "F24Request",
            obj(
                json!({
                    "payment_date": date(), "lines": { "type": "array", "items": line, "maxItems": 100 },
                    "debits": { "type": "array", "maxItems": 100, "items": debit_line(),
                        "description": "What the F24 pays. The credits may not exceed it (R-F24-BALANCE); from 1/1/2025 required of banks, financial intermediaries and insurers offsetting building credits, which may not pay INPS or INAIL (R-BAN-BANK-INPS)." },
                    "pin": pin()
                }),
                &["payment_date", "lines"],
            ),
        ),
        (
            "F24Reservation",
            obj(
                json!({
                    "reservation": { "type": "integer" }, "at": { "type": "string", "format": "date-time" }, "payment_date": date(),
                    "amount": c(), "lines": { "type": "array", "items": obj(
                        json!({ "codice_tributo": { "type": "string" }, "year": { "type": "integer" }, "amount": c() }),
                        &["codice_tributo", "year", "amount"],
                    ) },
                    "debits": { "type": "array", "items": debit_line() },
                    "takes": { "type": "array", "description": "Quanto è preso da ciascuna rata, con il movimento che lo prenota", "items": obj(
                        json!({ "rata": { "type": "integer" }, "amount": c(), "transfer": { "type": "integer" } }),
                        &["rata", "amount", "transfer"],
                    ) }, "replayed": { "type": "boolean" }
                }),
                &["reservation", "amount"],
            ),
        ),
        (
            "F24Outcome",
            obj(
                json!({ "reservation": { "type": "integer" }, "operation_id": { "type": "integer" }, "confirmed": { "type": "boolean" }, "amount": c(), "replayed": { "type": "boolean" } }),
                &["reservation", "confirmed"],
            ),
        ),
        (
            "SplitPreviewRequest",
            obj(
                json!({ "rata": { "type": "integer" }, "amount": c() }),
                &["rata", "amount"],
            ),
        ),
        (
            "SplitPreview",
            obj(
                json!({
                    "rata": { "type": "integer" }, "type_key": { "type": "string" }, "codice_tributo": { "type": "string" },
                    "year": { "type": "integer" }, "residual": c(), "amount": c(),
                    "rate": { "type": "array", "items": recap.clone(), "minItems": 10, "maxItems": 10 }
                }),
                &["rata", "amount", "rate"],
            ),
        ),
        (
            "SplitRequest",
            obj(
                json!({ "rata": { "type": "integer" }, "amount": c(), "pin": pin() }),
                &["rata", "amount"],
            ),
        ),
        (
            "SplitReceipt",
            obj(
                json!({
                    "operation_id": { "type": "integer" }, "at": { "type": "string", "format": "date-time" },
                    "split_credit": { "type": "integer", "description": "Da indicare per l'annullamento" },
                    "protocol": { "type": "string" }, "rata": { "type": "integer" }, "amount": c(),
                    "rate": { "type": "array", "description": "Solo le rate di importo non nullo", "items": obj(
                        json!({
                            "rata": { "type": "integer" }, "codice_univoco": { "type": "string" }, "codice_tributo": { "type": "string" },
                            "year": { "type": "integer" }, "amount": c(), "last_day_of_use": date()
                        }),
                        &["rata", "codice_univoco", "codice_tributo", "year", "amount", "last_day_of_use"],
                    ) },
                    "replayed": { "type": "boolean" }
                }),
                &["operation_id", "split_credit", "rate"],
            ),
        ),
        (
            "SplitAnnulReceipt",
            obj(
                json!({ "operation_id": { "type": "integer" }, "split_credit": { "type": "integer" }, "rata": { "type": "integer" }, "restored": recap, "replayed": { "type": "boolean" } }),
                &["operation_id", "rata", "restored"],
            ),
        ),
        (
            "ReductionRequest",
            obj(
                json!({ "rata": { "type": "integer" }, "amount": c(), "known_on": date(), "pin": pin() }),
                &["rata", "amount", "known_on"],
            ),
        ),
        (
            "ReductionReceipt",
            obj(
                json!({ "operation_id": { "type": "integer" }, "at": { "type": "string", "format": "date-time" }, "rata": { "type": "integer" }, "amount": c(), "known_on": date(), "replayed": { "type": "boolean" } }),
                &["operation_id", "rata", "amount"],
            ),
        ),
        (
            "DebtPosition",
            obj(
                json!({ "loads": { "type": "array", "items": obj(json!({
                    "kind": { "type": "string", "enum": ["erariale", "atto_agenzia", "altro"], "description": "Erariale (imposte e accessori), altro atto dell'Agenzia delle Entrate, o altro (mai contato)" },
                    "amount": { "$ref": "#/components/schemas/Cents", "description": "Residuo non pagato" },
                    "suspended": { "$ref": "#/components/schemas/Cents", "description": "Parte sospesa (giudiziale o amministrativa)" },
                    "plan": { "type": "string", "enum": ["none", "in_force", "lapsed"], "description": "Rateazione: assente, in corso (non conta), decaduta (conta il residuo)" },
                    "overdue": { "type": "boolean", "description": "Termine di pagamento scaduto (contano solo i carichi scaduti)" }
                }), &["kind", "amount", "suspended", "plan", "overdue"]) } }),
                &["loads"],
            ),
        ),
        (
            "DebtPositionReceipt",
            obj(
                json!({ "operation_id": { "type": "integer" }, "counted_for_ban_100k": c(), "counted_erariali": c(), "replayed": { "type": "boolean" } }),
                &["operation_id"],
            ),
        ),
        (
            "RentInput",
            obj(
                json!({
                    "lease": { "type": "string", "enum": ["non_residential", "business_lease"] },
                    "activity": { "type": "string", "enum": ["ordinary", "hotel", "agritourism", "non_commercial_institutional"] },
                    "seasonal": { "type": "boolean" }, "promiscuous": { "type": "boolean" },
                    "revenue_before": c(),
                    "months": { "type": "array", "items": rent_month() }
                }),
                &[
                    "lease",
                    "activity",
                    "seasonal",
                    "promiscuous",
                    "revenue_before",
                    "months",
                ],
            ),
        ),
        (
            "RentCredit",
            obj(
                json!({
                    "law_key": { "type": "string" }, "year": { "type": "integer" },
                    "months": { "type": "array", "items": obj(json!({
                        "month": { "type": "integer" },
                        "input": { "oneOf": [rent_month(), { "type": "null" }] },
                        "outcome": rent_outcome()
                    }), &["month", "outcome"]) },
                    "total": c(), "rounded_down": { "type": "boolean" }
                }),
                &["law_key", "year", "months", "total", "rounded_down"],
            ),
        ),
        (
            "CloseYearReport",
            obj(
                json!({ "year": { "type": "integer" }, "holdings": { "type": "integer" }, "amount": c(), "operations": { "type": "array", "items": { "type": "integer" } } }),
                &["year", "holdings", "amount"],
            ),
        ),
    ];
    if let Some(map) = all.as_object_mut() {
        for (name, schema) in add {
            map.insert(name.to_string(), schema);
        }
    }
    all
}

pub fn build() -> Value {
    let mut paths = serde_json::Map::new();
    for o in OPERATIONS {
        let mut parameters: Vec<Value> = Vec::new();
        for name in o
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        {
            parameters.push(json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }));
        }
        for (name, kind) in o.query {
            let schema = match *kind {
                "date" => json!({ "type": "string", "format": "date" }),
                "page_limit" => {
                    json!({ "type": "integer", "minimum": 1, "maximum": cessio_app::PAGE_MAX, "default": cessio_app::PAGE_DEFAULT })
                }
                "wait_seconds" => {
                    json!({ "type": "integer", "minimum": 0, "maximum": cessio_app::WAIT_MAX.as_secs(), "default": 0 })
                }
                other => json!({ "type": other }),
            };
            parameters
                .push(json!({ "name": name, "in": "query", "required": false, "schema": schema }));
        }
        if o.paged {
            parameters.push(json!({
                "name": "limit", "in": "query", "required": false,
                "description": "Righe per pagina",
                "schema": { "type": "integer", "minimum": 1, "maximum": cessio_app::PAGE_MAX, "default": cessio_app::PAGE_DEFAULT }
            }));
            parameters.push(json!({
                "name": "cursor", "in": "query", "required": false,
                "description": "Opaco: dall'intestazione Link della pagina precedente, con gli stessi filtri (altrimenti 422 cursor_filters_changed)",
                "schema": { "type": "string" }
            }));
        }
        if o.idempotent {
            parameters.push(json!({
                "name": "Idempotency-Key", "in": "header", "required": true,
                "description": "Stessa chiave e stesso corpo: stessa risposta; corpo diverso: 422 idempotency_mismatch",
                "schema": { "type": "string", "maxLength": 100 }
            }));
        }
        let mut operation = json!({
            "operationId": o.id,
            "summary": o.summary,
            "parameters": parameters,
            "responses": {
                "default": {
                    "description": "Rifiuto o errore (RFC 9457)",
                    "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
                }
            }
        });
        let success = match (o.response, o.path.ends_with(".csv")) {
            (_, false) if o.path.ends_with(".pdf") => {
                json!({ "description": "PDF", "content": { "application/pdf": { "schema": { "type": "string", "format": "binary" } } } })
            }
            (_, true) => {
                json!({ "description": "CSV (UTF-8 con BOM, separatore ;)", "content": { "text/csv": { "schema": { "type": "string" } } } })
            }
            (Some(s), _) => {
                json!({ "description": "OK", "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{s}") } } } })
            }
            (None, _) if o.id == "openapi" => {
                json!({ "description": "OpenAPI", "content": { "application/json": { "schema": { "type": "object" } } } })
            }
            (None, _) => json!({ "description": "OK" }),
        };
        operation["responses"][o.status.to_string()] = success;
        if let Some(job) = o.accepted {
            operation["responses"]["202"] = json!({
                "description": "Il lavoro non è finito nell'attesa: prosegue da sé, da seguire all'indirizzo in Location",
                "headers": { "Location": { "schema": { "type": "string" } } },
                "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{job}") } } }
            });
        }
        let links: serde_json::Map<String, Value> = LINKS
            .iter()
            .filter(|l| l.from == o.id)
            .map(|l| {
                let parameters: serde_json::Map<String, Value> = l
                    .parameters
                    .iter()
                    .map(|(name, expr)| ((*name).to_string(), json!(expr)))
                    .collect();
                (
                    l.name.to_string(),
                    json!({ "operationId": l.to, "parameters": parameters }),
                )
            })
            .collect();
        if !links.is_empty() {
            operation["responses"][o.status.to_string()]["links"] = Value::Object(links);
        }
        if o.paged {
            operation["responses"][o.status.to_string()]["headers"] = json!({
                "Link": {
                    "description": "La pagina seguente, quando c'è: <URL>; rel=\"next\" (RFC 8288)",
                    "schema": { "type": "string" }
                }
            });
        }
        if o.id == "importCommunications" || o.id == "submitImportJob" {
            operation["requestBody"] = json!({
                "required": true,
                "content": { "text/csv": { "schema": { "type": "string" } } }
            });
        }
        if let Some(r) = o.request {
            operation["requestBody"] = json!({
                "required": true,
                "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{r}") } } }
            });
        }
        let entry = paths.entry(o.path.to_string()).or_insert_with(|| json!({}));
        entry[o.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Cessio — Piattaforma cessione crediti",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Registro dei crediti d'imposta cedibili. Importi in centesimi; date Europe/Rome. Errori come application/problem+json con un codice stabile e la regola che ha rifiutato."
        },
        "servers": [{ "url": "/api/v1" }],
        "components": {
            "schemas": with_credit_schemas(schemas()),
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer" },
                "session": { "type": "apiKey", "in": "cookie", "name": "cessio_session" }
            }
        },
        "security": [{ "bearer": [] }, { "session": [] }],
        "paths": paths
    })
}

pub async fn document() -> Json<Value> {
    Json(build())
}

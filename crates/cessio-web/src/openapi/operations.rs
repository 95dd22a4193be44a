//! The operations of `/api/v1` as the document lists them: method, path, id, summary, and
//! the types of the request, the response and the query, from which `build` derives the
//! schemas; and the links between operations.

use schemars::{JsonSchema, Schema, SchemaGenerator};

use super::Rows;
use crate::api::{
    self, acceptance, cession, credits, delegations, events, jobs, monitoring, operator,
    origination, registry, session, webhooks,
};

/// The schema of one type, as the document refers to it.
pub type SchemaOf = fn(&mut SchemaGenerator) -> Schema;

/// A `$ref` to `T`'s schema (or `T`'s schema itself, if it is inlined), adding what it
/// names to the generator's definitions.
pub fn of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// One documented operation: method, path, id, summary, the request's and the success's
/// types, whether it needs an `Idempotency-Key`, its query's type.
#[derive(Debug)]
pub struct Op {
    pub method: &'static str,
    pub path: &'static str,
    pub id: &'static str,
    pub summary: &'static str,
    pub request: Option<SchemaOf>,
    pub status: u16,
    pub response: Option<SchemaOf>,
    pub idempotent: bool,
    /// The filters the query string takes: each field of the type is one parameter.
    pub query: Option<SchemaOf>,
    /// A list read page by page: `limit` and `cursor`, the next page in `Link`.
    pub paged: bool,
    /// A second success: `202 Accepted` with this type (a bulk job that goes on).
    pub accepted: Option<SchemaOf>,
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
        query: None,
        paged: false,
        accepted: None,
    }
}

pub const OPERATIONS: &[Op] = &[
    Op {
        request: Some(of::<session::LoginBody>),
        response: Some(of::<session::MeBody>),
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
        response: Some(of::<session::MeBody>),
        ..op(
            "get",
            "/me",
            "me",
            "Utente collegato e soggetti per cui può operare",
        )
    },
    Op {
        request: Some(of::<session::TokenBody>),
        status: 201,
        response: Some(of::<session::TokenCreated>),
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
        response: Some(of::<cessio_app::CfCheck>),
        ..op(
            "get",
            "/cf/{cf}",
            "checkCf",
            "Verifica un codice fiscale: formato (R-CF) e registrazione (R-CF-EXISTS)",
        )
    },
    Op {
        request: Some(of::<cessio_core::rent::RentInput>),
        response: Some(of::<cessio_core::rent::RentCredit>),
        ..op(
            "post",
            "/rent-credit",
            "rentCredit",
            "Calcola il credito d'imposta sui canoni (art. 28 DL 34/2020) mese per mese (R-RENT)",
        )
    },
    Op {
        request: Some(of::<registry::PartyBody>),
        status: 201,
        response: Some(of::<cessio_store::Party>),
        idempotent: true,
        ..op(
            "post",
            "/parties",
            "registerParty",
            "Operatore: registra un soggetto",
        )
    },
    Op {
        request: Some(of::<registry::UserBody>),
        status: 201,
        response: Some(of::<registry::Created>),
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
        request: Some(of::<delegations::DelegationBody>),
        status: 204,
        ..op(
            "post",
            "/delegations",
            "delegate",
            "Operatore: registra una delega",
        )
    },
    Op {
        request: Some(of::<delegations::DelegationBody>),
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
        response: Some(of::<Rows<delegations::HeldView>>),
        ..op(
            "get",
            "/me/delegations",
            "heldDelegations",
            "Deleghe ricevute e attive oggi: soggetto, ambito e ultimo giorno, a pagine per nome del soggetto",
        )
    },
    Op {
        paged: true,
        response: Some(of::<Rows<cessio_app::DelegationView>>),
        ..op(
            "get",
            "/parties/{cf}/delegations",
            "partyDelegations",
            "Deleghe concesse dal soggetto, attive e passate, con chi le ha concesse o revocate e quando (titolare o operatore), a pagine dalla più recente",
        )
    },
    Op {
        request: Some(of::<delegations::GrantBody>),
        status: 201,
        response: Some(of::<cessio_app::DelegationReceipt>),
        idempotent: true,
        ..op(
            "post",
            "/parties/{cf}/delegations",
            "grantDelegation",
            "Il titolare delega un intermediario, per consultazione o anche disposizione, fino a un giorno (incluso) o fino a revoca, con PIN (R-DELEGA-SCOPE, R-DELEGA-END); sostituisce la delega attiva dello stesso intermediario",
        )
    },
    Op {
        request: Some(of::<delegations::RevokeBody>),
        response: Some(of::<cessio_app::DelegationReceipt>),
        idempotent: true,
        ..op(
            "post",
            "/parties/{cf}/delegations/revoke",
            "revokePartyDelegation",
            "Il titolare revoca la delega di un intermediario, con PIN; ha effetto subito",
        )
    },
    Op {
        request: Some(of::<origination::OptionRequest>),
        status: 201,
        response: Some(of::<cessio_app::Communicated>),
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
        response: Some(of::<cessio_app::BulkJob>),
        ..op(
            "post",
            "/jobs/import",
            "submitImportJob",
            "F8 massivo come lavoro: il file CSV (come per /communications/bulk) è il corpo, il PIN nell'intestazione X-Cessio-Pin; risponde subito con il lavoro (Location), che prosegue da sé. Lo stesso file inviato di nuovo prima della fine è lo stesso lavoro, che riprende da dove era; nessuna riga è registrata due volte",
        )
    },
    Op {
        response: Some(of::<cessio_app::BulkJob>),
        ..op(
            "get",
            "/jobs/{id}",
            "bulkJob",
            "Un lavoro massivo: stato, righe elaborate e conteggi (al suo autore e agli operatori)",
        )
    },
    Op {
        response: Some(of::<Rows<cessio_app::BulkJobRow>>),
        paged: true,
        ..op(
            "get",
            "/jobs/{id}/rows",
            "bulkJobRows",
            "L'esito di ogni riga elaborata di un lavoro, in ordine di riga: ImportRow per un'importazione, AnswerJobRow per una risposta",
        )
    },
    Op {
        response: Some(of::<cessio_app::ImportReport>),
        accepted: Some(of::<cessio_app::BulkJob>),
        ..op(
            "post",
            "/communications/bulk",
            "importCommunications",
            "F8 massivo, come lavoro di cui si attende la fine (fino a 45 secondi: poi 202 con il lavoro da seguire): il file CSV (cf_beneficiario;tipo;anno_spesa;origine;cf_cessionario;importo;data_comunicazione, facoltative riferimento, no_tax_area, eccezione con il codice R-OPT-STOP e i suoi dati data_cilas, data_delibera, data_titolo, data_inizio_lavori, data_accordo, acconto_versato, dichiarazione_congiunta, data_preliminare, data_piano, data_domanda_contributo, data_fattura, requisito_barriere) è il corpo, il PIN nell'intestazione X-Cessio-Pin; esito riga per riga",
        )
    },
    Op {
        request: Some(of::<api::PinBody>),
        response: Some(of::<cessio_app::AnswerReceipt>),
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
        response: Some(of::<Rows<cessio_app::MonitorRow>>),
        query: Some(of::<monitoring::AsOfQuery>),
        ..op(
            "get",
            "/parties/{cf}/monitoring",
            "monitoring",
            "F1: monitoraggio per tipo e anno, anche a una data passata, a pagine per tipo e anno",
        )
    },
    Op {
        paged: true,
        response: Some(of::<Rows<cessio_app::CedibleHolding>>),
        ..op(
            "get",
            "/parties/{cf}/cedible",
            "cedible",
            "F2: rate cedibili con il massimo cedibile, a pagine per rata",
        )
    },
    Op {
        request: Some(of::<cession::CessionBody>),
        status: 201,
        response: Some(of::<cessio_app::CessionReceipt>),
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
        response: Some(of::<Rows<cessio_app::IncomingGroup>>),
        query: Some(of::<cessio_app::IncomingFilter>),
        ..op(
            "get",
            "/parties/{cf}/incoming",
            "incoming",
            "F3: operazioni da accettare, per tipo, anno e cedente, a pagine in quest'ordine; oltre 1.000 operazioni occorrono i filtri (R-1000)",
        )
    },
    Op {
        request: Some(of::<acceptance::AnswerBody>),
        response: Some(of::<cessio_app::AnswerReceipt>),
        idempotent: true,
        ..op(
            "post",
            "/parties/{cf}/incoming/answer",
            "answer",
            "F3: accetta o rifiuta un gruppo o tutto (R-ANSWER, R-WAIT5)",
        )
    },
    Op {
        request: Some(of::<acceptance::AnswerCodesBody>),
        response: Some(of::<cessio_app::BulkAnswerReport>),
        idempotent: true,
        ..op(
            "post",
            "/parties/{cf}/incoming/answer-codes",
            "answerCodes",
            "F3: accetta o rifiuta un elenco di protocolli o codici univoci (fino a 10.000), ogni riga con il suo esito; le righe valide in un'unica operazione (R-ANSWER, R-SUSP, R-WAIT5)",
        )
    },
    Op {
        request: Some(of::<jobs::AnswerJobBody>),
        status: 202,
        response: Some(of::<cessio_app::BulkJob>),
        ..op(
            "post",
            "/parties/{cf}/incoming/answer-jobs",
            "submitAnswerJob",
            "F3 come lavoro: accetta o rifiuta un elenco di protocolli o codici univoci (fino a 100.000), a parti di 1.000 righe, ognuna un'operazione; ogni riga con il suo esito (R-ANSWER, R-SUSP, R-WAIT5). Lo stesso elenco inviato di nuovo prima della fine è lo stesso lavoro",
        )
    },
    Op {
        response: Some(of::<Rows<cessio_app::MovementRow>>),
        query: Some(of::<cessio_app::MovementFilter>),
        paged: true,
        ..op(
            "get",
            "/parties/{cf}/movements",
            "movements",
            "F4: lista movimenti in ordine di registrazione, a pagine (limit, cursor; la pagina seguente nell'intestazione Link), fino a 50.000 righe (R-50000)",
        )
    },
    Op {
        query: Some(of::<cessio_app::MovementFilter>),
        ..op(
            "get",
            "/parties/{cf}/movements.csv",
            "movementsCsv",
            "F4: esportazione CSV, al massimo 50.000 righe (R-50000)",
        )
    },
    Op {
        response: Some(of::<cessio_app::EventPage>),
        query: Some(of::<events::EventsQuery>),
        ..op(
            "get",
            "/parties/{cf}/events",
            "events",
            "Eventi del soggetto in ordine di registrazione dopo il cursore after (senza: dal primo; end: solo i futuri), al più limit (da 1 a 1.000); con wait (secondi, al più 30) attende il primo se non ce ne sono. Ogni risposta porta il cursore della lettura seguente",
        )
    },
    Op {
        request: Some(of::<webhooks::WebhookRequest>),
        status: 201,
        response: Some(of::<cessio_app::WebhookCreated>),
        ..op(
            "post",
            "/parties/{cf}/webhooks",
            "subscribeWebhook",
            "Iscrive un indirizzo (https://) agli eventi del soggetto da ora in poi: ogni consegna è un POST JSON firmato (Cessio-Signature: t=…,v1=HMAC-SHA256 di \"t.corpo\" con il segreto, mostrato solo qui), almeno una volta, ritentata con attese crescenti; al più 10 indirizzi attivi per soggetto",
        )
    },
    Op {
        response: Some(of::<webhooks::WebhookList>),
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
        request: Some(of::<operator::DeceasedBody>),
        response: Some(of::<cessio_store::Party>),
        ..op(
            "post",
            "/operator/parties/{cf}/deceased",
            "setDeceased",
            "Operatore: anagrafe, soggetto deceduto (regola di rischio)",
        )
    },
    Op {
        request: Some(of::<operator::BankClientBody>),
        status: 201,
        response: Some(of::<cessio_app::BankClientEntry>),
        ..op(
            "post",
            "/operator/bank-clients",
            "setBankClient",
            "Operatore: correntista di una banca, consumatore o no (R-BANK-CLIENT); relation no chiude il rapporto",
        )
    },
    Op {
        paged: true,
        response: Some(of::<Rows<cessio_app::BankClientEntry>>),
        ..op(
            "get",
            "/operator/banks/{cf}/clients",
            "bankClients",
            "Operatore: correntisti attuali di una banca, a pagine per codice fiscale del correntista (R-BANK-CLIENT)",
        )
    },
    Op {
        request: Some(of::<operator::SuspendBody>),
        status: 201,
        response: Some(of::<cessio_app::SuspensionView>),
        ..op(
            "post",
            "/operator/suspensions",
            "suspend",
            "Operatore: sospende una comunicazione in attesa entro 5 giorni lavorativi, per al massimo 30 giorni (R-SUSP)",
        )
    },
    Op {
        paged: true,
        response: Some(of::<Rows<cessio_app::SuspensionView>>),
        query: Some(of::<operator::SuspensionsQuery>),
        ..op(
            "get",
            "/operator/suspensions",
            "suspensions",
            "Operatore: sospensioni, a pagine per comunicazione (R-SUSP)",
        )
    },
    Op {
        request: Some(of::<operator::EndBody>),
        response: Some(of::<cessio_app::SuspensionView>),
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
        response: Some(of::<Rows<cessio_app::RiskHitView>>),
        query: Some(of::<cessio_app::RiskHitFilter>),
        ..op(
            "get",
            "/operator/risk-hits",
            "riskHits",
            "Operatore: esiti delle regole di rischio su ogni comunicazione, a pagine dal più vecchio",
        )
    },
    Op {
        request: Some(of::<operator::SeizeBody>),
        status: 201,
        response: Some(of::<cessio_app::SeizureView>),
        idempotent: true,
        ..op(
            "post",
            "/operator/seizures",
            "seize",
            "Operatore: sequestro della rata di un titolare (R-SEIZE)",
        )
    },
    Op {
        request: Some(of::<operator::ReleaseBody>),
        response: Some(of::<cessio_app::SeizureView>),
        idempotent: true,
        ..op(
            "post",
            "/operator/seizures/release",
            "releaseSeizure",
            "Operatore: dissequestro; la scadenza d'uso si sposta della durata del sequestro (R-SEIZE)",
        )
    },
    Op {
        request: Some(of::<operator::AnnulBody>),
        status: 201,
        response: Some(of::<cessio_app::AnnulmentReceipt>),
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
        response: Some(of::<Rows<cessio_app::F24AvailabilityRow>>),
        ..op(
            "get",
            "/parties/{cf}/f24-availability",
            "f24Availability",
            "F5: per codice tributo e anno, quanto si può utilizzare in F24 oggi, a pagine per codice tributo e anno",
        )
    },
    Op {
        paged: true,
        response: Some(of::<Rows<cessio_app::ChoiceRow>>),
        ..op(
            "get",
            "/parties/{cf}/f24-choices",
            "f24Choices",
            "F5: scelta di utilizzo in F24 di ogni rata, a pagine per rata (R-F24-CHOICE)",
        )
    },
    Op {
        request: Some(of::<credits::ChoiceBody>),
        response: Some(of::<cessio_app::ChoiceReceipt>),
        idempotent: true,
        ..op(
            "post",
            "/parties/{cf}/f24-choices/{rata}",
            "f24Choice",
            "F5: dichiara (declare true) o revoca la scelta di utilizzo in F24 (R-F24-CHOICE)",
        )
    },
    Op {
        request: Some(of::<credits::ReserveBody>),
        status: 201,
        response: Some(of::<cessio_app::F24Reservation>),
        idempotent: true,
        ..op(
            "post",
            "/parties/{cf}/f24",
            "reserveF24",
            "F5: prenota un modello F24, scartato per intero se una riga supera il disponibile (R-F24-OVER)",
        )
    },
    Op {
        request: Some(of::<api::PinBody>),
        response: Some(of::<cessio_app::F24Outcome>),
        idempotent: true,
        ..op(
            "post",
            "/parties/{cf}/f24/{id}/confirm",
            "confirmF24",
            "F5: F24 eseguito, gli importi prenotati sono utilizzati",
        )
    },
    Op {
        request: Some(of::<api::PinBody>),
        response: Some(of::<cessio_app::F24Outcome>),
        idempotent: true,
        ..op(
            "post",
            "/parties/{cf}/f24/{id}/discard",
            "discardF24",
            "F5: F24 scartato, gli importi prenotati tornano disponibili",
        )
    },
    Op {
        request: Some(of::<credits::SplitPreviewBody>),
        response: Some(of::<cessio_app::SplitPreview>),
        ..op(
            "post",
            "/parties/{cf}/split/preview",
            "splitPreview",
            "F6: riepilogo delle dieci rate (anno, importo, ultimo giorno, codice tributo); non registra nulla (R-SPLIT-ELIGIBLE, R-SPLIT-CENTS)",
        )
    },
    Op {
        request: Some(of::<credits::SplitBody>),
        status: 201,
        response: Some(of::<cessio_app::SplitReceipt>),
        idempotent: true,
        ..op(
            "post",
            "/parties/{cf}/split",
            "splitRata",
            "F6: ripartisce il residuo di una rata (o parte) in dieci rate annuali, non cedibili (R-SPLIT-NOCEDE)",
        )
    },
    Op {
        request: Some(of::<api::PinBody>),
        response: Some(of::<cessio_app::SplitAnnulReceipt>),
        idempotent: true,
        ..op(
            "post",
            "/parties/{cf}/split/{id}/annul",
            "annulSplit",
            "F6: annulla la ripartizione {id} se nessuna rata è utilizzata o prenotata (R-SPLIT-ANNUL)",
        )
    },
    Op {
        request: Some(of::<credits::ReductionBody>),
        status: 201,
        response: Some(of::<cessio_app::ReductionReceipt>),
        idempotent: true,
        ..op(
            "post",
            "/parties/{cf}/reductions",
            "reduce",
            "F7: riduzione del credito, entro 30 giorni dalla conoscenza e nei limiti del residuo",
        )
    },
    Op {
        request: Some(of::<cessio_core::debt::DebtPosition>),
        response: Some(of::<cessio_app::DebtPositionReceipt>),
        idempotent: true,
        ..op(
            "put",
            "/parties/{cf}/debt-position",
            "setDebtPosition",
            "Operatore: posizione debitoria scaduta del soggetto (R-BAN-100K, R-BAN-1500)",
        )
    },
    Op {
        response: Some(of::<cessio_app::CloseYearReport>),
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

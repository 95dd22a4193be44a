//! The "Regole" page: every rule a refusal can name, what it means for the person using
//! the platform, and where it comes from (decree and article, provvedimento, or the
//! Agency's guide). Open to everyone, like the Guida.
//!
//! Refusals keep their rule id for the JSON API (`rule`, and the id in `detail`); pages
//! take the id out of the sentence and link it here instead (`layout::plain_message`), so
//! that a person reads plain Italian and can still ask "why?".
//!
//! Architecture invariant: `RULES` is the one table of rules the pages know. A rule id
//! the app can emit without an entry here would be shown unlinked; the tests below scan
//! the sources of cessio-core and cessio-app for ids and fail on any missing one.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};

use super::open_page;
use crate::WebState;

/// One rule of the register as a person reads it.
#[derive(Debug)]
pub struct Rule {
    /// The stable id of the specification (`R-PARTIAL`), or of a function's own rule
    /// (`F2`, `F7`, `F9-ANNUL`).
    pub id: &'static str,
    /// A few words: what the rule is about.
    pub title: &'static str,
    /// One or two sentences: what it means for the user.
    pub meaning: &'static str,
    /// The legal source: law and article, provvedimento, or the Agency's guide.
    pub source: &'static str,
}

/// The groups of the page, in reading order: (anchor, title, rule ids).
const GROUPS: &[(&str, &str, &[&str])] = &[
    (
        "soggetti",
        "Codice fiscale e soggetti",
        &["R-CF", "R-CF-EXISTS", "R-PA"],
    ),
    (
        "cessione",
        "Cessione crediti",
        &[
            "R-PARTIAL",
            "R-PENDING-OUT",
            "R-CHAIN",
            "R-BANK-CLIENT",
            "R-ONCE",
            "R-ECO-2018",
            "F2",
        ],
    ),
    (
        "accettazione",
        "Accettazione crediti e sconti",
        &["R-ANSWER", "R-WAIT5", "F9-ANNUL"],
    ),
    (
        "limiti",
        "Limiti delle liste e dei file",
        &["R-300", "R-1000", "R-50000", "F4"],
    ),
    (
        "f24",
        "Gestione F24",
        &[
            "R-F24-CHOICE",
            "R-F24-WINDOW-121",
            "R-F24-WINDOW-122",
            "R-F24-FUTURE",
            "R-F24-OVER",
            "R-F24-BALANCE",
            "R-BAN-100K",
            "R-BAN-1500",
            "R-BAN-BANK-INPS",
            "F5",
        ],
    ),
    (
        "rateazione",
        "Ripartizione in dieci rate e riduzione del credito",
        &[
            "R-SPLIT-ELIGIBLE",
            "R-SPLIT-CENTS",
            "R-SPLIT-NOCEDE",
            "R-SPLIT-ANNUL",
            "F7",
        ],
    ),
    (
        "comunicazioni",
        "Comunicazioni dell'opzione e crediti sui canoni",
        &["R-OPT-STOP", "R-OPT-ANNUL", "R-RENT"],
    ),
    (
        "controlli",
        "Controlli dell'Agenzia",
        &["R-SUSP", "R-SEIZE"],
    ),
    (
        "deleghe",
        "Deleghe agli intermediari",
        &["R-DELEGA-SCOPE", "R-DELEGA-END"],
    ),
    (
        "registro",
        "Tenuta del registro",
        &["R-CONSERVE", "R-HISTORY"],
    ),
];

/// Every rule, with its meaning and source (SPEC.md, catalogue/rules.toml,
/// catalogue/types.toml and the domain research give the sources).
pub const RULES: &[Rule] = &[
    Rule {
        id: "R-CF",
        title: "Codice fiscale valido",
        meaning: "Un codice fiscale di 16 caratteri o una partita IVA di 11 cifre si accetta solo se la struttura e il carattere di controllo sono corretti, anche nelle forme di omocodia. Spazi, trattini, minuscole e il prefisso IT non contano.",
        source: "DM 23/12/1976 n. 13813 (codificazione dei soggetti dell'anagrafe tributaria); per la partita IVA, cifra di controllo con l'algoritmo di Luhn.",
    },
    Rule {
        id: "R-CF-EXISTS",
        title: "Cessionario registrato",
        meaning: "Il codice fiscale del cessionario deve appartenere a un soggetto registrato: altrimenti la cessione non prosegue.",
        source: "Guida dell'Agenzia delle Entrate alla piattaforma; pagina «La cessione crediti» di agenziaentrate.gov.it.",
    },
    Rule {
        id: "R-PA",
        title: "Nessun acquisto da parte delle pubbliche amministrazioni",
        meaning: "Una pubblica amministrazione non può acquistare crediti: non può essere indicata come cessionario.",
        source: "DL 11/2023 art. 1 (in vigore dal 17/02/2023).",
    },
    Rule {
        id: "R-PARTIAL",
        title: "Rate tracciabili cedute solo per intero",
        meaning: "Dopo la prima comunicazione, una rata tracciabile (comunicazioni dal 1° maggio 2022) si cede solo per intero. Le rate non tracciabili e i crediti dell'art. 122 si possono cedere anche in parte.",
        source: "art. 121 c.1-quater DL 34/2020 (introdotto dal DL 13/2022); FAQ dell'Agenzia delle Entrate del 19/05/2022.",
    },
    Rule {
        id: "R-PENDING-OUT",
        title: "Importo ceduto bloccato fino alla risposta",
        meaning: "Dalla cessione fino alla risposta del cessionario l'importo non si può né usare né cedere di nuovo, e il cedente non può ritirare la cessione: solo il rifiuto del cessionario lo restituisce.",
        source: "Guida dell'Agenzia delle Entrate alla piattaforma.",
    },
    Rule {
        id: "R-CHAIN",
        title: "Numero di cessioni limitato",
        meaning: "Dopo la comunicazione dell'opzione è ammessa una cessione a chiunque, poi al massimo altre due, ciascuna solo a banche, intermediari finanziari, società di un gruppo bancario o assicurazioni. Contano le cessioni comunicate dal 17/02/2022.",
        source: "DL 13/2022 art. 1 (confluito nella L. 25/2022); decorrenza dal 17/02/2022 per il Provv. 4/2/2022 n. 37381.",
    },
    Rule {
        id: "R-BANK-CLIENT",
        title: "Cessione della banca ai propri clienti",
        meaning: "Una banca, o una società del suo gruppo, può sempre cedere, fuori dal limite delle cessioni, a un proprio correntista che non sia un consumatore; quel cliente non può cedere di nuovo.",
        source: "DL 50/2022 art. 14; L. 91/2022 (conversione, clienti diversi dai consumatori).",
    },
    Rule {
        id: "R-ONCE",
        title: "Crediti cedibili una sola volta",
        meaning: "Alcuni crediti si cedono una sola volta: chi li riceve li può solo utilizzare in compensazione con il modello F24. Dal 17 al 25 febbraio 2022 lo erano tutti i crediti dei bonus edilizi: una sola ulteriore cessione, e nessuna per il primo cessionario di una cessione comunicata in quei giorni.",
        source: "DL 4/2022 art. 28 (in vigore 27/01/2022; sulla piattaforma dal 17/02/2022, Provv. 4/2/2022 n. 37381), abrogato dal DL 13/2022 dal 26/02/2022; guida dell'Agenzia delle Entrate alla piattaforma.",
    },
    Rule {
        id: "R-ECO-2018",
        title: "Ecobonus: regime storico delle cessioni",
        meaning: "Il credito dell'ecobonus del regime storico (art. 14 DL 63/2013) si cede ai fornitori o ad altri privati, mai a banche o intermediari finanziari, salvo che il beneficiario sia nella no tax area.",
        source: "art. 14 c.2-ter, 2-sexies e 2-septies DL 63/2013; L. 205/2017 (Bilancio 2018); Provv. 28/8/2017 n. 165110.",
    },
    Rule {
        id: "F2",
        title: "Autorizzazione a mostrare il nome del cedente",
        meaning: "Per proseguire con la cessione occorre autorizzare il cessionario a vedere, quando risponde, il nome o la denominazione del cedente.",
        source: "Pagina «La cessione crediti» di agenziaentrate.gov.it; guida dell'Agenzia delle Entrate alla piattaforma.",
    },
    Rule {
        id: "F4",
        title: "Almeno un filtro nella lista movimenti",
        meaning: "La lista movimenti si consulta indicando almeno un filtro oltre alla tracciabilità, per esempio il periodo di registrazione.",
        source: "Guida dell'Agenzia delle Entrate alla piattaforma, «Lista movimenti».",
    },
    Rule {
        id: "F5",
        title: "Data di versamento dell'F24",
        meaning: "Un F24 si prenota per una data di versamento da oggi a 30 giorni da oggi: non per una data passata.",
        source: "Regola della piattaforma Cessio sulla prenotazione dell'F24 (l'Agenzia controlla i crediti utilizzati nell'F24 alla data del versamento).",
    },
    Rule {
        id: "R-DELEGA-SCOPE",
        title: "Ambito della delega",
        meaning: "Una delega di sola consultazione permette all'intermediario di vedere i crediti e i movimenti del titolare, non di cedere, accettare, comunicare o usare in F24: per questo serve una delega anche di disposizione.",
        source: "Deleghe ai servizi online dell'Agenzia delle Entrate (consultazione e disposizione); regola della piattaforma Cessio.",
    },
    Rule {
        id: "R-DELEGA-END",
        title: "Scadenza della delega",
        meaning: "Una delega vale fino al giorno di scadenza indicato dal titolare, compreso; poi non dà più alcun accesso. La scadenza non può essere nel passato.",
        source: "Deleghe ai servizi online dell'Agenzia delle Entrate (durata indicata dal delegante); regola della piattaforma Cessio.",
    },
    Rule {
        id: "R-ANSWER",
        title: "Risposta per intero e irreversibile",
        meaning: "Accettazione e rifiuto valgono per l'intero gruppo (tipo, anno, cedente), mai per una parte, e non si possono cambiare. Il rifiuto restituisce l'importo al cedente.",
        source: "Guida dell'Agenzia delle Entrate alla piattaforma.",
    },
    Rule {
        id: "R-WAIT5",
        title: "Cinque giorni lavorativi prima di rispondere",
        meaning: "Una cessione successiva alla prima, di crediti tracciabili, si accetta o si rifiuta solo dopo 5 giorni lavorativi dalla registrazione; sabati, domeniche e festività nazionali non contano.",
        source: "Controlli preventivi dell'art. 122-bis DL 34/2020 (DL 157/2021); Provv. 1/12/2021 n. 340450.",
    },
    Rule {
        id: "F9-ANNUL",
        title: "Annullamento dell'accettazione su richiesta",
        meaning: "Se entrambe le parti documentano un errore, l'Agenzia può annullare un'accettazione i cui importi il cessionario non ha né usato né ceduto: tornano al cedente come dopo un rifiuto.",
        source: "Circ. 33/E del 6/10/2022; Circ. 6/E dell'8/3/2023 (richiesta via PEC).",
    },
    Rule {
        id: "R-300",
        title: "300 righe a video",
        meaning: "La lista movimenti mostra al massimo 300 righe: oltre, occorre restringere i filtri per vederle; l'esportazione CSV resta disponibile. Tramite l'API la lista si legge a pagine (fino a 1.000 righe l'una) e le righe oltre le 300 si raggiungono pagina dopo pagina, fino al limite di 50.000 dell'esportazione (R-50000).",
        source: "Guida dell'Agenzia delle Entrate alla piattaforma.",
    },
    Rule {
        id: "R-1000",
        title: "Filtri oltre le 1.000 operazioni",
        meaning: "Quando più di 1.000 operazioni attendono risposta, l'elenco si mostra solo dopo averlo filtrato per tipo di credito, anno o cedente.",
        source: "Guida dell'Agenzia delle Entrate alla piattaforma.",
    },
    Rule {
        id: "R-50000",
        title: "50.000 righe nel file CSV",
        meaning: "L'esportazione della lista movimenti contiene al massimo 50.000 righe: oltre, è rifiutata per intero e va divisa con i filtri, per esempio per periodo.",
        source: "Guida dell'Agenzia delle Entrate alla piattaforma.",
    },
    Rule {
        id: "R-F24-CHOICE",
        title: "Scelta dell'utilizzo in F24",
        meaning: "Una rata tracciabile si usa in F24 solo dopo averlo scelto; finché la scelta vale, la rata non è cedibile. Dal 05/10/2023 la scelta si può revocare.",
        source: "Provv. 10/6/2022 (scelta preventiva); Provv. 22/9/2023 n. 332687 (revoca).",
    },
    Rule {
        id: "R-F24-WINDOW-121",
        title: "Crediti edilizi: utilizzo nell'anno della rata",
        meaning: "Una rata dei crediti edilizi (art. 121) si usa dal 1° gennaio al 31 dicembre del suo anno, anche dopo una cessione. Quello che resta il 31 dicembre scade: non si può più usare, cedere né chiedere a rimborso.",
        source: "art. 121 c.3 DL 34/2020.",
    },
    Rule {
        id: "R-F24-WINDOW-122",
        title: "Crediti dell'art. 122: utilizzo nell'anno della cessione",
        meaning: "Chi riceve un credito dell'art. 122 (canoni, sanificazione, adeguamento) lo usa entro il 31 dicembre dell'anno della cessione e può cederlo ancora solo entro quell'anno; poi scade.",
        source: "art. 122 DL 34/2020; circ. 14/E/2020.",
    },
    Rule {
        id: "R-F24-FUTURE",
        title: "Rate di anni futuri",
        meaning: "Una rata di un anno futuro si usa in compensazione dal 1° gennaio di quell'anno.",
        source: "art. 121 c.3 DL 34/2020 (quote annuali); guida dell'Agenzia delle Entrate alla piattaforma.",
    },
    Rule {
        id: "R-F24-OVER",
        title: "Modello F24 oltre il disponibile",
        meaning: "Un modello F24 che chiede più dell'importo disponibile per un codice tributo e un anno è scartato per intero.",
        source: "Controllo automatico dell'Agenzia delle Entrate sulle quote annuali utilizzabili (scarto del modello F24).",
    },
    Rule {
        id: "R-F24-BALANCE",
        title: "Saldo del modello F24",
        meaning: "I crediti compensati in un modello F24 non possono superare i debiti che il modello paga: il saldo finale non è mai negativo.",
        source: "Istruzioni per la compilazione del modello F24 (saldo finale); art. 17 D.Lgs. 241/1997.",
    },
    Rule {
        id: "R-BAN-BANK-INPS",
        title: "Banche: crediti edilizi e contributi",
        meaning: "Dal 1° gennaio 2025 banche, intermediari finanziari, società dei gruppi bancari e imprese di assicurazione non possono compensare i crediti dei bonus edilizi con contributi INPS e premi INAIL: nel modello F24 indicano i debiti e i crediti edilizi coprono solo quelli delle altre sezioni.",
        source: "DL 39/2024 art. 4-bis (L. 67/2024 di conversione).",
    },
    Rule {
        id: "R-BAN-100K",
        title: "Debiti a ruolo oltre 100.000 euro",
        meaning: "Chi ha più di 100.000 euro di carichi affidati all'agente della riscossione scaduti, non sospesi né rateizzati, non può compensare crediti in F24, salvo i crediti INPS e INAIL. Il blocco cessa quando il debito scende a 100.000 euro o meno.",
        source: "art. 37 c.49-quinquies DL 223/2006 (L. 213/2023 c.94; DL 39/2024 art. 4 c.2), dal 01/07/2024; circ. 16/E/2024.",
    },
    Rule {
        id: "R-BAN-1500",
        title: "Debiti erariali oltre 1.500 euro",
        meaning: "I debiti erariali iscritti a ruolo e scaduti oltre 1.500 euro bloccano la compensazione dei crediti erariali fino al loro importo. I crediti di questa piattaforma sono agevolativi e non ne sono toccati.",
        source: "art. 31 c.1 DL 78/2010 (conv. L. 122/2010).",
    },
    Rule {
        id: "R-SPLIT-ELIGIBLE",
        title: "Rate che si possono ripartire in dieci",
        meaning: "Si può ripartire in dieci rate annuali il residuo delle rate di Superbonus comunicate entro il 31/10/2022 (dalla rata 2022) e di Superbonus, Sismabonus e Barriere 75 % comunicate entro il 31/03/2023 (dalla rata 2023). La funzione è attiva dal 02/05/2023.",
        source: "art. 9 c.4 DL 176/2022 (conv. L. 6/2023); Provv. 18/4/2023 n. 132123; Ris. 19/E del 2/5/2023.",
    },
    Rule {
        id: "R-SPLIT-CENTS",
        title: "Dieci rate uguali",
        meaning: "Le dieci rate sommano esattamente l'importo ripartito; gli eventuali centesimi in più vanno sulla prima rata.",
        source: "art. 9 c.4 DL 176/2022 (dieci rate annuali di pari importo); Provv. 18/4/2023 n. 132123.",
    },
    Rule {
        id: "R-SPLIT-NOCEDE",
        title: "Rate ripartite non cedibili",
        meaning: "Le rate nate dalla ripartizione in dieci non si possono cedere: le usa in F24 solo chi le detiene.",
        source: "Provv. 18/4/2023 n. 132123.",
    },
    Rule {
        id: "R-SPLIT-ANNUL",
        title: "Annullare la ripartizione",
        meaning: "La ripartizione si può annullare finché nessuna delle dieci rate è stata usata o prenotata: torna la rata originaria con il suo codice tributo, anno e termine.",
        source: "Provv. 22/9/2023 n. 332687 (online dal 05/10/2023).",
    },
    Rule {
        id: "F7",
        title: "Riduzione del credito",
        meaning: "Un credito divenuto inutilizzabile per ragioni diverse dalla scadenza si dichiara entro 30 giorni da quando lo si è saputo; la riduzione è accettata se il residuo basta e l'importo esce per sempre dalla disponibilità.",
        source: "art. 25 DL 104/2023 (conv. L. 136/2023); funzione attiva dal 01/12/2023.",
    },
    Rule {
        id: "R-OPT-STOP",
        title: "Nuove opzioni solo nei casi di eccezione",
        meaning: "Dal 17/02/2023 non si comunicano nuove opzioni per i bonus edilizi dell'art. 121, salvo uno dei casi di eccezione previsti dalla legge, indicato con i fatti e le date che richiede.",
        source: "DL 11/2023 art. 2 (conv. L. 38/2023).",
    },
    Rule {
        id: "R-OPT-ANNUL",
        title: "Annullare una comunicazione dell'opzione",
        meaning: "Chi ha inviato una comunicazione dell'opzione la può annullare o sostituire fino al giorno 5 del mese successivo all'invio, se non è ancora accettata; dopo, solo il fornitore o il cessionario può rifiutarla.",
        source: "Provv. 3/2/2022 dell'Agenzia delle Entrate, come modificato dal Provv. 10/6/2022.",
    },
    Rule {
        id: "R-RENT",
        title: "Credito sui canoni di locazione",
        meaning: "Il credito è il 60 % del canone per gli immobili non abitativi e il 30 % per l'affitto d'azienda, per marzo, aprile e maggio 2020 (aprile, maggio e giugno per le strutture turistiche stagionali), se i ricavi del 2019 non superano 5 milioni di euro e il fatturato del mese è sceso almeno del 50 %.",
        source: "art. 28 DL 34/2020; circ. 14/E/2020.",
    },
    Rule {
        id: "R-SUSP",
        title: "Sospensione per controlli",
        meaning: "Entro 5 giorni lavorativi dalla registrazione l'Agenzia può sospendere per al massimo 30 giorni una comunicazione con profili di rischio; intanto nulla si può accettare, usare o cedere. Alla fine ha effetto, oppure è considerata non effettuata.",
        source: "art. 122-bis DL 34/2020 (DL 157/2021 art. 2, dal 12/11/2021); Provv. 1/12/2021 n. 340450.",
    },
    Rule {
        id: "R-SEIZE",
        title: "Crediti sequestrati",
        meaning: "Una rata sequestrata non si può usare né cedere; al dissequestro torna utilizzabile e il termine per usarla si allunga della durata del sequestro.",
        source: "DL 13/2022 art. 3.",
    },
    Rule {
        id: "R-CONSERVE",
        title: "Nessun credito creato o perso",
        meaning: "Per ogni rata la somma degli importi, in tutti gli stati e presso tutti i titolari, è sempre pari all'importo emesso, e nessun saldo scende sotto zero.",
        source: "Regola di tenuta del registro di Cessio, non una norma: garantisce che nessuna operazione crei o distrugga credito.",
    },
    Rule {
        id: "R-HISTORY",
        title: "Storico completo",
        meaning: "Ogni operazione è registrata con data, utente, soggetto, controparte, importi ed esito; nulla si modifica o si cancella, e la situazione di ogni momento passato si può ricostruire.",
        source: "Regola di tenuta del registro di Cessio, non una norma.",
    },
];

/// The rule with this id, if the page has it.
pub fn find(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

/// The anchor of a rule on the page: its id in lower case (`r-partial`).
pub fn anchor(id: &str) -> String {
    id.to_ascii_lowercase()
}

/// The address of a rule's entry (`/regole#r-partial`).
pub fn href(id: &str) -> String {
    format!("/regole#{}", anchor(id))
}

pub async fn show(State(state): State<WebState>, headers: HeaderMap) -> Response {
    open_page(&state, &headers, "Regole", rules_page()).await
}

fn rules_page() -> Markup {
    html! {
        h1 { "Le regole della piattaforma" }
        p.lead {
            "Quando la piattaforma rifiuta un'operazione, accanto al messaggio c'è il link alla regola "
            "che non è rispettata. Qui ogni regola è spiegata in breve, con la norma o il documento da cui viene."
        }
        p { "Come usare le funzioni è spiegato nella " a href="/guida" { "Guida" } "." }
        nav.cessio-toc aria-labelledby="regole-indice" {
            h2.h5 #regole-indice { "Indice" }
            ol {
                @for (anchor, title, _) in GROUPS {
                    li { a href={ "#" (anchor) } { (title) } }
                }
            }
        }
        @for (group, title, ids) in GROUPS {
            h2.h3.mt-5 #(group) { (title) }
            @for rule in ids.iter().filter_map(|id| find(id)) {
                section.mb-4 aria-labelledby=(anchor(rule.id)) {
                    h3.h5 #(anchor(rule.id)) { span.cessio-code { (rule.id) } " — " (rule.title) }
                    p.mb-1 { (rule.meaning) }
                    p.small.text-muted { "Fonte: " (rule.source) }
                }
            }
        }
        p { a href="#contenuto" { "Torna all'inizio" } }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::{GROUPS, RULES, anchor, find};

    /// Every rule id of SPEC.md (`grep -o 'R-[A-Z0-9-]*' SPEC.md | sort -u`).
    const SPEC_RULES: &[&str] = &[
        "R-1000",
        "R-300",
        "R-50000",
        "R-ANSWER",
        "R-BAN-100K",
        "R-BAN-1500",
        "R-BANK-CLIENT",
        "R-CF",
        "R-CF-EXISTS",
        "R-CHAIN",
        "R-CONSERVE",
        "R-ECO-2018",
        "R-F24-CHOICE",
        "R-F24-FUTURE",
        "R-F24-OVER",
        "R-F24-WINDOW-121",
        "R-F24-WINDOW-122",
        "R-HISTORY",
        "R-ONCE",
        "R-OPT-ANNUL",
        "R-OPT-STOP",
        "R-PA",
        "R-PARTIAL",
        "R-PENDING-OUT",
        "R-RENT",
        "R-SEIZE",
        "R-SPLIT-ANNUL",
        "R-SPLIT-CENTS",
        "R-SPLIT-ELIGIBLE",
        "R-SPLIT-NOCEDE",
        "R-SUSP",
        "R-WAIT5",
    ];

    #[test]
    fn every_spec_rule_has_an_entry() {
        for id in SPEC_RULES {
            assert!(find(id).is_some(), "{id} is missing from the Regole page");
        }
    }

    #[test]
    fn every_rule_is_in_exactly_one_group_and_every_id_once() {
        let mut seen = BTreeSet::new();
        for rule in RULES {
            assert!(seen.insert(rule.id), "{} listed twice", rule.id);
            assert!(
                !rule.meaning.is_empty() && !rule.source.is_empty(),
                "{} lacks its meaning or source",
                rule.id
            );
            let groups = GROUPS
                .iter()
                .filter(|(_, _, ids)| ids.contains(&rule.id))
                .count();
            assert_eq!(groups, 1, "{} is in {groups} groups", rule.id);
        }
        for (_, _, ids) in GROUPS {
            for id in *ids {
                assert!(find(id).is_some(), "group lists {id}, which has no entry");
            }
        }
    }

    #[test]
    fn anchors_are_the_lower_case_ids() {
        assert_eq!(anchor("R-PARTIAL"), "r-partial");
        assert_eq!(anchor("F9-ANNUL"), "f9-annul");
    }

    /// The rule ids written in a source text: `R-…` ids anywhere (names, messages,
    /// comments), and function rules (`F2`, `F9-ANNUL`) quoted or in parentheses in code,
    /// as `rule()` returns them and messages end with them; comments name functions
    /// ("F3, F4"), not rules, and `F24` is a form.
    fn ids_in(text: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for line in text.lines() {
            let code_end = line.find("//").unwrap_or(line.len());
            let bytes = line.as_bytes();
            let id_char = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-';
            let mut i = 0;
            while i < bytes.len() {
                let boundary = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
                let rule_start = bytes[i..].starts_with(b"R-");
                let function_start = i < code_end
                    && bytes[i] == b'F'
                    && i > 0
                    && matches!(bytes[i - 1], b'"' | b'(')
                    && bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
                if !(boundary && (rule_start || function_start)) {
                    i += 1;
                    continue;
                }
                let mut end = i + 1;
                while end < bytes.len() && id_char(bytes[end]) {
                    end += 1;
                }
                let id = line[i..end].trim_end_matches('-');
                let closed = matches!(bytes.get(end), Some(b'"' | b')'));
                if (rule_start && id.len() > 2)
                    || (function_start && closed && !id.starts_with("F24"))
                {
                    out.insert(id.to_string());
                }
                i = end;
            }
        }
        out
    }

    fn ids_under(dir: &Path, out: &mut BTreeSet<String>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                ids_under(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                out.extend(ids_in(&text));
            }
        }
    }

    #[test]
    fn ids_are_found_in_messages_names_and_rule_functions() {
        let found = ids_in(
            "detail: \"solo per intero (R-PARTIAL)\"; rule: \"F2\"; \"(F7)\"; fn r_wait5; \"F24\"\n\
             // F3 (F4) R-F24-OVER.",
        );
        let found: Vec<&str> = found.iter().map(String::as_str).collect();
        assert_eq!(found, ["F2", "F7", "R-F24-OVER", "R-PARTIAL"]);
    }

    /// Every rule id the domain and the app can emit (or mention) has its entry, so a
    /// refusal's link never points at a missing anchor.
    #[test]
    fn every_rule_the_code_names_is_on_the_page() {
        let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut found = BTreeSet::new();
        for dir in ["cessio-core/src", "cessio-app/src"] {
            ids_under(&crates.join(dir), &mut found);
        }
        for id in ["R-PARTIAL", "R-CHAIN", "F2", "F7", "F9-ANNUL"] {
            assert!(found.contains(id), "the scan did not find {id}: {found:?}");
        }
        let missing: Vec<&String> = found.iter().filter(|id| find(id).is_none()).collect();
        assert!(
            missing.is_empty(),
            "rule ids named in the code without an entry on the Regole page: {missing:?}"
        );
    }
}

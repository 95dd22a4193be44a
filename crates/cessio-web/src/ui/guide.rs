//! The user guide ("Guida"): what each function does, its limits, its deadlines and what
//! to do after a mistake, in the order of the Agency's own guide to the platform. It is
//! open to everyone, signed in or not, since a person may need it before the first login.
//!
//! The figures it states (300, 1.000, 50.000 rows; 5 working days; 31 December) are the
//! rules of the specification; a change of rule changes this page in the same commit.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};

use super::open_page;
use crate::WebState;

/// The sections, in reading order: (anchor, title). The table of contents and the
/// headings both come from here, so that no link can point to a missing section.
const SECTIONS: &[(&str, &str)] = &[
    ("premessa", "Che cosa fa la piattaforma"),
    ("accesso", "Accesso, PIN e soggetto per cui si opera"),
    ("monitoraggio", "Monitoraggio crediti"),
    ("cessione", "Cessione crediti"),
    ("accettazione", "Accettazione crediti e sconti"),
    ("movimenti", "Lista movimenti"),
    ("comunicazioni", "Comunicazioni dell'opzione"),
    ("f24", "Gestione F24"),
    (
        "rateazione",
        "Ripartizione in dieci rate e riduzione del credito",
    ),
    ("canoni", "Calcolo del credito sui canoni di locazione"),
    ("limiti", "Limiti delle liste e dei file"),
    ("tracciabilita", "Crediti tracciabili"),
    ("scadenze", "Scadenze da ricordare"),
    ("errori", "Che cosa fare dopo un errore"),
];

pub async fn show(State(state): State<WebState>, headers: HeaderMap) -> Response {
    open_page(&state, &headers, "Guida", guide()).await
}

fn heading(anchor: &str) -> Markup {
    let title = SECTIONS
        .iter()
        .find(|(a, _)| *a == anchor)
        .map_or(anchor, |(_, t)| t);
    html! { h2.h3.mt-5 #(anchor) { (title) } }
}

fn guide() -> Markup {
    html! {
        h1 { "Guida alla piattaforma cessione crediti" }
        p.lead {
            "Come usare Cessio: che cosa mostra ogni pagina, quali operazioni sono definitive, "
            "i limiti e le scadenze, e che cosa fare se si sbaglia."
        }
        p {
            "Le regole che la piattaforma applica, ciascuna con la norma da cui viene, sono nella pagina "
            a href="/regole" { "Regole" } "."
        }
        nav.cessio-toc aria-labelledby="indice-titolo" {
            h2.h5 #indice-titolo { "Indice" }
            ol {
                @for (anchor, title) in SECTIONS {
                    li { a href={ "#" (anchor) } { (title) } }
                }
            }
        }

        (heading("premessa"))
        p {
            "La piattaforma registra le cessioni dei crediti d'imposta già concordate tra le parti "
            "(Superbonus, Ecobonus, Sismabonus, Bonus facciate, crediti sui canoni di locazione e gli altri "
            "crediti degli articoli 121 e 122 del DL 34/2020). Non compra né vende crediti: le comunicazioni "
            "servono perché la cessione abbia effetto verso l'Agenzia delle Entrate e perché il credito si possa "
            "usare in compensazione con il modello F24 o cedere ancora."
        }
        p {
            "Ogni credito è diviso in rate annuali. Ogni rata ha un anno di riferimento, un importo e un codice "
            "tributo, ed è l'unità che si cede, si accetta e si usa."
        }

        (heading("accesso"))
        ul {
            li {
                strong { "Con SPID o CIE" } ": l'identità digitale basta anche per confermare; "
                "non viene chiesto il PIN."
            }
            li {
                strong { "Con nome utente e password" } ": ogni operazione che cambia i crediti (cessione, "
                "accettazione, rifiuto, comunicazione, F24, ripartizione, annullamento, riduzione) si conferma con il "
                strong { "PIN dispositivo" } " ricevuto con le credenziali. Dopo 5 tentativi errati il PIN si blocca: "
                "lo sblocca l'operatore dell'Agenzia."
            }
            li {
                "Chi opera per più soggetti (un intermediario delegato, uno studio) sceglie dopo l'accesso il soggetto "
                "per cui lavora. Il soggetto resta indicato in alto in ogni pagina, con il link «Cambia soggetto», "
                "e fa parte dell'indirizzo: due schede aperte su due clienti non si possono confondere."
            }
            li {
                strong { "Deleghe" } ": il titolare delega il proprio intermediario dalla pagina «Deleghe» della home, "
                "con il PIN: per la sola " strong { "consultazione" } " (vede crediti, monitoraggio e movimenti) o anche per la "
                strong { "disposizione" } " (cede, accetta, comunica, usa in F24, ripartisce), fino a un giorno indicato, "
                "incluso, o fino alla revoca. La revoca ha effetto subito; ogni concessione e revoca resta registrata con "
                "chi l'ha fatta e quando. L'intermediario vede nella scelta del soggetto che cosa può fare e fino a quando."
            }
        }

        (heading("monitoraggio"))
        p {
            "Solo consultazione: non si compie nessuna operazione. Per tipo di credito e anno di riferimento mostra "
            "i crediti ricevuti (in attesa di accettazione, accettati, rifiutati), quelli ceduti (accettati o no dal "
            "cessionario), quelli usati in F24 (utilizzati o prenotati da un modello in corso) e il residuo, diviso "
            "tra la parte ancora cedibile e quella utilizzabile solo in compensazione. Si può chiedere la situazione "
            "a una data passata."
        }

        (heading("cessione"))
        p {
            "Elenca le rate che il soggetto può cedere: accettate, non prenotate in F24, non ripartite, non "
            "sospese o pignorate, e la cui cedibilità lo consente. Per ogni riga selezionata l'importo è già "
            "compilato con il massimo cedibile; si indica il codice fiscale del cessionario, e la pagina dice subito "
            "se è valido e registrato: altrimenti non si prosegue."
        }
        ol {
            li { "Selezionare le rate, indicare importi e cessionari (un codice fiscale può valere per più righe)." }
            li { "«Prosegui al riepilogo»: la pagina riassume ogni cessione; nulla è ancora comunicato." }
            li { "Autorizzare il cessionario a vedere il nome del cedente (senza l'autorizzazione non si prosegue), inserire il PIN e confermare." }
            li { "La ricevuta riporta il protocollo dell'operazione: conservarla." }
        }
        p {
            "Dalla cessione fino alla risposta del cessionario l'importo non si può né usare né cedere di nuovo, e il "
            "cedente non può ritirarla: solo il rifiuto del cessionario lo restituisce."
        }

        (heading("accettazione"))
        p {
            "Elenca le cessioni ricevute e le comunicazioni in cui il soggetto è il fornitore che ha praticato lo "
            "sconto o il primo cessionario, raggruppate per tipo di credito, anno di riferimento e cedente, con gli "
            "importi. Si accetta o si rifiuta un gruppo intero, oppure tutti insieme («Accetta tutti», «Rifiuta tutti»); "
            "la pagina chiede conferma e PIN."
        }
        ul {
            li {
                "Un credito accettato è subito utilizzabile in F24 (dal 1° gennaio del suo anno se è di un anno "
                "futuro) o cedibile di nuovo, e compare nel cassetto fiscale."
            }
            li { "Un credito rifiutato torna al cedente; una comunicazione dell'opzione rifiutata perde effetto." }
            li { strong { "Accettazione e rifiuto non sono mai parziali e sono irreversibili." } }
        }
        p {
            "Per rispondere insieme a molte comunicazioni e cessioni: «Rispondi per elenco di protocolli o codici "
            "univoci». Si incollano fino a 10.000 codici, uno per riga; la pagina mostra che cosa comprende ogni riga "
            "prima della conferma con il PIN. La risposta diventa un lavoro, con una pagina propria che ne mostra "
            "l'avanzamento e si aggiorna da sola: la si può chiudere, il lavoro prosegue. Alla fine la pagina dà "
            "l'esito di ogni riga e la ricevuta di ogni operazione."
        }

        (heading("movimenti"))
        p {
            "Le comunicazioni di cessione in cui il soggetto è cedente o cessionario, con le operazioni successive "
            "(accettazione, rifiuto, annullamento, sospensione). Si filtra per periodo di registrazione o di risposta, "
            "codice fiscale del cedente o del cessionario (anche solo l'inizio), stato, tipo di credito, codice tributo, "
            "anno, protocollo o codice univoco, tracciabilità; serve almeno un filtro oltre alla tracciabilità. "
            "«Esporta in CSV» scarica le stesse righe in un file con separatore «;»."
        }

        (heading("comunicazioni"))
        p {
            "Il beneficiario della detrazione (o l'intermediario per lui) comunica l'opzione per lo sconto in fattura "
            "o per la cessione del credito: tipo di credito, anno della spesa, fornitore o primo cessionario, importo "
            "totale. La piattaforma calcola le rate, i codici tributo e gli anni. La comunicazione ha effetto quando "
            "il fornitore o il primo cessionario la accetta."
        }
        p {
            "Si possono inviare più comunicazioni con un file CSV: ogni riga valida è registrata, le altre sono "
            "elencate con il motivo; ricaricare lo stesso file non registra nulla due volte. Il file diventa un "
            "lavoro, seguito nella sua pagina come la risposta per elenco. Dal 17/02/2023 i bonus "
            "edilizi ammettono l'opzione solo nei casi di eccezione previsti dal DL 11/2023: si sceglie il caso "
            "dall'elenco del modulo (nel file, il suo codice nella colonna eccezione) e se ne indicano le date "
            "richieste, come la presentazione della CILAS o la delibera del condominio; dal 30/03/2024 la maggior parte dei casi "
            "richiede anche una fattura per lavori già eseguiti entro il 29/03/2024."
        }

        (heading("f24"))
        p {
            "Mostra per codice tributo e anno di riferimento quanto è utilizzabile oggi, prenotato, in attesa della "
            "scelta, utilizzabile negli anni futuri e scaduto. Un modello F24 prima "
            strong { "prenota" } " gli importi, poi si conferma l'utilizzo o si scarta il modello, che libera la "
            "prenotazione. Un modello che chiede più del disponibile per un codice e un anno è rifiutato per intero."
        }
        p {
            "Per le rate tracciabili occorre prima scegliere l'utilizzo in F24; finché la scelta vale la rata non è "
            "cedibile. La scelta si può revocare."
        }
        p {
            "Nelle " strong { "righe a debito" } " si indicano i tributi, i contributi e i premi che il modello paga "
            "(sezioni Erario, INPS, Regioni, IMU e altri tributi locali, INAIL): i crediti compensati non possono "
            "superarli. Dal 1° gennaio 2025 banche, intermediari finanziari e imprese di assicurazione devono "
            "indicarli sempre, e i loro crediti dei bonus edilizi non pagano contributi INPS e premi INAIL."
        }

        (heading("rateazione"))
        p {
            "Il residuo di una rata di Superbonus, Sismabonus o Barriere architettoniche 75 % che la legge ammette "
            "(art. 9 c. 4 DL 176/2022) si può ripartire, in tutto o in parte, in dieci rate annuali uguali, dall'anno "
            "dopo quello della rata; gli eventuali centesimi in più vanno sulla prima. Prima di confermare la pagina "
            "mostra le dieci rate con anno, importo, ultimo giorno di utilizzo e codice tributo (7771, 7772, 7773). "
            "Le rate ripartite non si possono cedere: si usano solo in F24."
        }
        p {
            "La ripartizione si può annullare finché nessuna delle dieci rate è stata usata o prenotata: torna la rata "
            "originaria con il suo codice, anno e termine. Nella stessa pagina si dichiara la riduzione di un credito "
            "divenuto inutilizzabile (art. 25 DL 104/2023), entro 30 giorni da quando lo si è saputo: l'importo esce "
            "per sempre dalla disponibilità."
        }

        (heading("canoni"))
        p {
            "Calcola mese per mese il credito d'imposta sui canoni del 2020 (art. 28 DL 34/2020): il 60 % del canone "
            "per gli immobili non abitativi, il 30 % per l'affitto d'azienda, per marzo, aprile e maggio (aprile, "
            "maggio e giugno per le strutture turistiche stagionali), se i ricavi del 2019 non superano 5 milioni "
            "di euro (nessun limite per alberghi e agriturismi) e il fatturato del mese è sceso almeno del 50 % rispetto allo stesso mese del 2019. "
            "Il calcolo non registra nulla."
        }

        (heading("limiti"))
        div.table-responsive tabindex="0" role="region" aria-label="Limiti (tabella scorrevole)" {
            table.table.cessio-table {
                caption { "Limiti della piattaforma" }
                thead { tr { th scope="col" { "Dove" } th scope="col" { "Limite" } th scope="col" { "Oltre il limite" } } }
                tbody {
                    tr {
                        th scope="row" { "Lista movimenti, a video" }
                        td { "300 righe" }
                        td { "La tabella non è mostrata: restringere i filtri. L'esportazione CSV resta disponibile, con il numero delle righe." }
                    }
                    tr {
                        th scope="row" { "Accettazione, senza filtri" }
                        td { "1.000 operazioni" }
                        td { "La pagina chiede prima di filtrare per tipo, anno o cedente." }
                    }
                    tr {
                        th scope="row" { "Esportazione CSV della lista movimenti" }
                        td { "50.000 righe" }
                        td { "L'esportazione è rifiutata per intero: dividerla con i filtri, per esempio per periodo." }
                    }
                    tr {
                        th scope="row" { "File delle comunicazioni" }
                        td { "32 MB" }
                        td { "Il file è rifiutato: dividerlo in più file." }
                    }
                }
            }
        }
        p { "La piattaforma non taglia mai una lista o un file in silenzio: oltre un limite lo dice e chiede di restringere." }

        (heading("tracciabilita"))
        p {
            "I crediti delle comunicazioni inviate dal 1° maggio 2022 sono tracciabili: ogni rata ha un "
            strong { "codice identificativo univoco" } " che la segue in tutte le cessioni e compare nelle ricevute "
            "e nella lista movimenti. Una rata tracciabile si cede solo per intero: "
            strong { "non sono ammesse cessioni parziali" } ". Le rate non tracciabili e i crediti dell'art. 122 "
            "(canoni, sanificazione, adeguamento) si possono cedere anche in parte."
        }
        p {
            "Il numero di cessioni è limitato: dopo la prima comunicazione, una cessione libera e poi al massimo due "
            "a banche, intermediari finanziari o assicurazioni. La colonna «Cedibilità» dice che cosa resta possibile "
            "per ogni rata. Le pubbliche amministrazioni non possono acquistare crediti."
        }

        (heading("scadenze"))
        ul {
            li {
                "Crediti edilizi (art. 121): ogni rata si usa in F24 dal 1° gennaio al "
                strong { "31 dicembre del suo anno di riferimento" } ", anche dopo una cessione. "
                "Quello che resta il 31 dicembre scade: non si può usare dopo, né cedere, né chiedere a rimborso."
            }
            li {
                "Crediti dell'art. 122 (canoni, sanificazione, adeguamento): ogni cessionario li usa entro il "
                strong { "31 dicembre dell'anno della cessione" } " (il primo cessionario, dell'anno della "
                "comunicazione dell'opzione)."
            }
            li {
                "Il credito per l'adeguamento degli ambienti di lavoro (art. 120) si usa e si cede solo fino al "
                strong { "30 giugno 2021" } ", da chiunque lo detenga."
            }
            li { "Una rata di un anno futuro si usa dal 1° gennaio di quell'anno." }
            li {
                "Una cessione di crediti tracciabili successiva alla prima si può accettare o rifiutare solo dopo "
                strong { "5 giorni lavorativi" } " dalla registrazione (sabati, domeniche e festività nazionali non contano); "
                "la pagina indica la data da cui si potrà rispondere."
            }
            li {
                "Una comunicazione dell'opzione non ancora accettata si può annullare fino al "
                strong { "giorno 5 del mese successivo" } " all'invio."
            }
            li { "La riduzione del credito va dichiarata entro 30 giorni da quando se ne è avuta notizia." }
        }

        (heading("errori"))
        dl {
            dt { "Ho ceduto all'indirizzo sbagliato o un importo sbagliato" }
            dd {
                "La cessione non si può ritirare. Chiedere al cessionario di "
                strong { "rifiutarla" } ": l'importo torna disponibile e si può cedere di nuovo con i dati giusti."
            }
            dt { "Ho inviato una comunicazione dell'opzione sbagliata" }
            dd {
                "Se non è ancora accettata, annullarla da «Comunicazioni dell'opzione» entro il giorno 5 del mese "
                "successivo all'invio, poi inviarla corretta. Altrimenti il fornitore o il cessionario può rifiutarla."
            }
            dt { "Ho accettato un credito per errore" }
            dd {
                "L'accettazione è irreversibile per chi l'ha fatta. Se entrambe le parti documentano l'errore, "
                "l'operatore dell'Agenzia può annullare l'accettazione, purché gli importi non siano stati né usati "
                "né ceduti: tornano al cedente come dopo un rifiuto."
            }
            dt { "Ho ripartito una rata in dieci per errore" }
            dd { "Annullare la ripartizione da «Rateazione e riduzione», finché nessuna delle dieci rate è stata usata o prenotata." }
            dt { "Un modello F24 prenotato non va più pagato così" }
            dd { "Scartare il modello in «Gestione F24»: la prenotazione è liberata." }
            dt { "Il PIN è bloccato" }
            dd { "Rivolgersi all'operatore dell'Agenzia, che lo sblocca; oppure accedere con SPID o CIE, che non richiedono il PIN." }
        }
        p {
            "Ogni rifiuto della piattaforma dice che cosa non va e, dove possibile, che cosa fare; accanto al "
            "messaggio il link «Regola» porta alla spiegazione della regola non rispettata, con la sua fonte, nella "
            "pagina " a href="/regole" { "Regole" } ". Nessuna operazione rifiutata cambia i crediti."
        }
        p { a href="#contenuto" { "Torna all'inizio" } }
    }
}

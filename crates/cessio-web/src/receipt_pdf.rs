//! The printable receipt of an operation: the app's [`OperationReceipt`] laid out on A4
//! pages, in Italian.
//!
//! Written with `pdf-writer` in the standard Helvetica in WinAnsiEncoding, which every PDF
//! reader has and which covers the accented letters and `€`: no font is embedded. Content
//! streams are left uncompressed, so the text can be read in the bytes (and tests do).
//! Nothing here reads a clock: the only time printed is the operation's own, so the same
//! operation always gives the same bytes.

use cessio_app::{OperationKind, OperationReceipt, ReceiptParty, ReceiptRow, RowKind};
use cessio_core::time::to_rome;
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN: f32 = 50.0;
const BODY_SIZE: f32 = 9.5;
const LEADING: f32 = 13.0;
/// Characters of body text that fit in a line between the margins, and in a field's value
/// right of its label: Helvetica's average width at the body size, with room to spare for
/// capitals (codici fiscali). Longer text wraps at a space; a word longer still is cut.
const LINE_CHARS: usize = 92;
const VALUE_CHARS: usize = 64;
/// Body lines per page, below the title and above the page number.
const LINES_PER_PAGE: usize = 54;

const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");

/// One line of the body.
#[derive(Debug)]
enum Line {
    Heading(String),
    Field(String, String),
    Text(String),
    Blank,
}

/// The PDF of a receipt.
pub fn render(r: &OperationReceipt) -> Vec<u8> {
    let lines = body(r);
    let pages: Vec<&[Line]> = lines.chunks(LINES_PER_PAGE).collect();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let info = Ref::new(5);
    let first_page = 6;
    let page_ref = |i: usize| Ref::new(first_page + 2 * i32::try_from(i).unwrap_or(0));
    let content_ref = |i: usize| Ref::new(first_page + 1 + 2 * i32::try_from(i).unwrap_or(0));

    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids((0..pages.len()).map(page_ref))
        .count(i32::try_from(pages.len()).unwrap_or(i32::MAX));
    for (font, base) in [(regular, "Helvetica"), (bold, "Helvetica-Bold")] {
        pdf.type1_font(font)
            .base_font(Name(base.as_bytes()))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }
    let title = format!("Ricevuta dell'operazione {}", r.operation_id);
    pdf.document_info(info)
        .title(TextStr(&title))
        .producer(TextStr("Cessio"));

    for (i, page_lines) in pages.iter().enumerate() {
        let mut page = pdf.page(page_ref(i));
        page.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT));
        page.parent(tree);
        page.contents(content_ref(i));
        page.resources()
            .fonts()
            .pair(REGULAR, regular)
            .pair(BOLD, bold);
        page.finish();
        let content = page_content(&title, page_lines, i + 1, pages.len());
        pdf.stream(content_ref(i), &content);
    }
    pdf.finish()
}

fn page_content(title: &str, lines: &[Line], page: usize, pages: usize) -> Vec<u8> {
    let mut c = Content::new();
    let mut y = PAGE_HEIGHT - MARGIN;
    text(&mut c, BOLD, 15.0, MARGIN, y, title);
    y -= 18.0;
    text(
        &mut c,
        REGULAR,
        BODY_SIZE,
        MARGIN,
        y,
        "Piattaforma cessione crediti (Cessio)",
    );
    y -= 8.0;
    c.set_line_width(0.5);
    c.move_to(MARGIN, y);
    c.line_to(PAGE_WIDTH - MARGIN, y);
    c.stroke();
    y -= LEADING + 4.0;
    for line in lines {
        match line {
            Line::Heading(s) => text(&mut c, BOLD, BODY_SIZE + 1.0, MARGIN, y, s),
            Line::Field(label, value) => {
                text(&mut c, BOLD, BODY_SIZE, MARGIN, y, &format!("{label}:"));
                text(&mut c, REGULAR, BODY_SIZE, MARGIN + 150.0, y, value);
            }
            Line::Text(s) => text(&mut c, REGULAR, BODY_SIZE, MARGIN, y, s),
            Line::Blank => {}
        }
        y -= LEADING;
    }
    text(
        &mut c,
        REGULAR,
        8.0,
        MARGIN,
        MARGIN - 20.0,
        &format!("Pagina {page} di {pages}"),
    );
    c.finish().into_vec()
}

fn text(c: &mut Content, font: Name<'_>, size: f32, x: f32, y: f32, s: &str) {
    c.begin_text();
    c.set_font(font, size);
    c.next_line(x, y);
    // pdf-writer writes a string with any byte past ASCII in hex: shown in runs, the ASCII
    // ones (codes, amounts, the hash) stay readable in the bytes.
    let bytes = win_ansi(&cut(s, LINE_CHARS));
    for run in bytes.chunk_by(|a, b| a.is_ascii() == b.is_ascii()) {
        c.show(Str(run));
    }
    c.end_text();
}

/// At most `max` characters, the last one an ellipsis where the text was longer.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Text in WinAnsiEncoding (Windows-1252): Latin-1 where the two agree, the code page's
/// own places for `€`, quotes and dashes, `?` for what it cannot show.
fn win_ansi(s: &str) -> Vec<u8> {
    s.chars()
        .map(|ch| match ch {
            ' '..='~' | '\u{a0}'..='\u{ff}' => u8::try_from(u32::from(ch)).unwrap_or(b'?'),
            '€' => 0x80,
            '‚' => 0x82,
            '„' => 0x84,
            '…' => 0x85,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            _ => b'?',
        })
        .collect()
}

/// `s` in lines of at most `max` characters, broken at spaces.
fn wrap(s: &str, max: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in s.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > max {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

/// A labelled value, its continuation lines under the value.
fn field(label: &str, value: &str) -> Vec<Line> {
    wrap(value, VALUE_CHARS)
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let label = if i == 0 { label } else { "" };
            Line::Field(label.to_string(), v)
        })
        .collect()
}

/// A paragraph, its continuation lines indented as its first.
fn paragraph(s: &str) -> Vec<Line> {
    let indent: String = s.chars().take_while(|c| *c == ' ').collect();
    let indent = if indent.is_empty() {
        "    ".to_string()
    } else {
        indent
    };
    wrap(s.trim_start(), LINE_CHARS - indent.len())
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let first = s.starts_with(' ') || i > 0;
            Line::Text(if first { format!("{indent}{l}") } else { l })
        })
        .collect()
}

fn body(r: &OperationReceipt) -> Vec<Line> {
    let mut lines = field("Operazione", operation_label(r.kind));
    lines.extend(field(
        "Protocollo dell'operazione",
        &r.operation_id.to_string(),
    ));
    if let Some(p) = &r.communication_protocol {
        lines.extend(field("Protocollo della comunicazione", p));
    }
    let at = to_rome(r.at).format("%d/%m/%Y alle %H:%M:%S (ora di Roma)");
    lines.extend(field("Registrata il", &at.to_string()));
    if let Some(p) = &r.party {
        lines.extend(field("Soggetto", &party(p)));
    }
    lines.extend(field("Utente", &r.acting_user));
    lines.extend(field("Importo totale", &r.total.to_string()));
    lines.extend(field("Righe", &r.rows.len().to_string()));
    lines.push(Line::Blank);
    if !r.rows.is_empty() {
        lines.push(Line::Heading("Rate interessate".into()));
        for (i, row) in r.rows.iter().enumerate() {
            lines.extend(row_lines(i + 1, row));
        }
        lines.push(Line::Blank);
    }
    lines.push(Line::Heading(
        "Registro delle operazioni (catena di hash)".into(),
    ));
    lines.extend(field("Posizione nel registro", &r.log_seq.to_string()));
    lines.extend(field("Hash della registrazione", &r.log_hash));
    lines.extend(paragraph(
        "Ogni registrazione contiene l'hash della precedente: la posizione e l'hash identificano \
         questa operazione nel registro, che non si modifica né si cancella (R-HISTORY).",
    ));
    lines
}

fn row_lines(n: usize, row: &ReceiptRow) -> Vec<Line> {
    let mut lines = paragraph(&format!(
        "{n}. {} — codice univoco {} — {}",
        row_label(row.kind),
        row.codice_univoco,
        row.amount
    ));
    lines.extend(paragraph(&format!(
        "    {}, anno {}, codice tributo {}, comunicazione {}",
        row.type_name, row.year, row.codice_tributo, row.protocol
    )));
    let (from_label, to_label) = match row.kind {
        RowKind::Ceded | RowKind::Accepted | RowKind::Refused => ("Cedente", "Cessionario"),
        RowKind::Communicated | RowKind::Granted => ("Beneficiario", "Titolare"),
        _ => ("Titolare", "A"),
    };
    if let Some(p) = &row.from {
        lines.extend(paragraph(&format!("    {from_label}: {}", party(p))));
    }
    if let Some(p) = &row.to {
        lines.extend(paragraph(&format!("    {to_label}: {}", party(p))));
    }
    lines
}

fn party(p: &ReceiptParty) -> String {
    match &p.name {
        Some(name) => format!("{} — {name}", p.cf),
        None => format!("{} — nome non autorizzato dal cedente", p.cf),
    }
}

fn operation_label(k: OperationKind) -> &'static str {
    match k {
        OperationKind::Communication => "Comunicazione dell'opzione",
        OperationKind::Cession => "Cessione del credito",
        OperationKind::Acceptance => "Accettazione",
        OperationKind::Refusal => "Rifiuto",
        OperationKind::F24Reservation => "Prenotazione in compensazione F24",
        OperationKind::F24Use => "Utilizzo in compensazione F24",
        OperationKind::F24Release => "Annullamento della prenotazione F24",
        OperationKind::Split => "Ulteriore rateazione (dieci rate)",
        OperationKind::SplitAnnulment => "Annullamento dell'ulteriore rateazione",
        OperationKind::Reduction => "Riduzione del credito",
        OperationKind::F24Choice => "Scelta di utilizzo in F24",
        OperationKind::Other => "Operazione",
    }
}

fn row_label(k: RowKind) -> &'static str {
    match k {
        RowKind::Communicated => "Comunicata, in attesa di risposta",
        RowKind::Granted => "Attribuita",
        RowKind::Ceded => "Ceduta",
        RowKind::Accepted => "Accettata",
        RowKind::Refused => "Rifiutata",
        RowKind::Reserved => "Prenotata in F24",
        RowKind::Used => "Utilizzata in F24",
        RowKind::Released => "Prenotazione annullata",
        RowKind::Split => "Rateizzata",
        RowKind::SplitIssued => "Nuova rata",
        RowKind::SplitAnnulled => "Rateazione annullata",
        RowKind::Reduced => "Ridotta",
        RowKind::Expired => "Scaduta",
        RowKind::Seized => "Pignorata",
        RowKind::Corrected => "Rettificata",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cessio_core::money::Cents;
    use chrono::TimeZone;

    fn receipt(rows: usize) -> OperationReceipt {
        OperationReceipt {
            operation_id: 42,
            kind: OperationKind::Cession,
            at: chrono::Utc
                .with_ymd_and_hms(2025, 2, 3, 9, 0, 0)
                .single()
                .unwrap_or_default(),
            acting_user: "mario.rossi".into(),
            party: Some(ReceiptParty {
                cf: "RSSMRA80A01H501U".into(),
                name: Some("Mario Rossi".into()),
            }),
            communication_protocol: None,
            rows: (0..rows)
                .map(|i| ReceiptRow {
                    kind: RowKind::Ceded,
                    protocol: "25020310000000001".into(),
                    codice_univoco: format!("250203100000000010000001{i:06}"),
                    type_name: "Superbonus (città)".into(),
                    year: 2025,
                    codice_tributo: "7701".into(),
                    amount: Cents::new(123_456),
                    from: None,
                    to: Some(ReceiptParty {
                        cf: "03189950961".into(),
                        name: None,
                    }),
                })
                .collect(),
            total: Cents::new(123_456),
            log_seq: 17,
            log_hash: "ab".repeat(32),
        }
    }

    fn has(pdf: &[u8], s: &[u8]) -> bool {
        pdf.windows(s.len()).any(|w| w == s)
    }

    #[test]
    fn the_text_is_in_the_bytes_in_win_ansi() {
        let pdf = render(&receipt(1));
        assert!(pdf.starts_with(b"%PDF-"));
        for s in [
            &b"Protocollo dell'operazione:"[..],
            b"250203100000000010000001000000",
            b"1.234,56",
            b"<80>",
            b"<E0>",
            b"03/02/2025 alle 10:00:00",
            b"WinAnsiEncoding",
            &"ab".repeat(32).into_bytes(),
        ] {
            assert!(has(&pdf, s), "{}", String::from_utf8_lossy(s));
        }
        assert!(!has(&pdf, b"FlateDecode"));
    }

    #[test]
    fn the_same_receipt_gives_the_same_bytes() {
        assert_eq!(render(&receipt(3)), render(&receipt(3)));
    }

    #[test]
    fn many_rows_go_on_more_pages() {
        let pdf = render(&receipt(60));
        assert!(has(&pdf, b"Pagina 1 di 4"), "three lines a row, 54 a page");
        assert!(!has(&pdf, b"Pagina 1 di 5"));
        assert!(has(&pdf, b"250203100000000010000001000059"));
    }

    #[test]
    fn long_text_wraps_at_spaces() {
        assert_eq!(wrap("aa bb cc", 5), vec!["aa bb", "cc"]);
        let lines = paragraph(&format!("    {}", "parola ".repeat(30)));
        assert!(lines.len() > 1);
        assert!(
            lines
                .iter()
                .all(|l| matches!(l, Line::Text(t) if t.starts_with("    parola")))
        );
    }

    #[test]
    fn what_win_ansi_cannot_show_is_a_question_mark() {
        assert_eq!(win_ansi("è€ž"), vec![0xe8, 0x80, b'?']);
        assert_eq!(cut("abcdef", 4), "abc…");
    }
}

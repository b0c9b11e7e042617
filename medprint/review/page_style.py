"""The sign-off page's style sheet (inline in the page: nothing is fetched), for the screen and for print."""

from __future__ import annotations

PAGE_CSS = """
:root { --ink: #1d2733; --muted: #5b6878; --line: #d5dbe3; --panel: #f4f6f9; --accent: #1f5f8b;
        --warn: #8a4b00; --warn-bg: #fff4e0; --bad: #a3202a; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0; background: #e9edf2; color: var(--ink);
       font: 15px/1.45 "Segoe UI", "Helvetica Neue", Arial, "Liberation Sans", sans-serif; }
main.report { max-width: 1240px; margin: 24px auto; background: #fff; padding: 28px 36px 20px;
              border: 1px solid var(--line); border-radius: 6px; }
h1 { font-size: 24px; margin: 2px 0 8px; font-weight: 600; }
h1 .output-name { color: var(--accent); font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 21px; }
h2 { font-size: 18px; font-weight: 600; margin: 0 0 12px; padding-bottom: 6px; border-bottom: 2px solid var(--accent); }
h3 { font-size: 15px; margin: 12px 0 6px; }
.kicker { margin: 0; text-transform: uppercase; letter-spacing: .08em; font-size: 12px; color: var(--muted); }
.purpose, .lead, .window { color: var(--muted); margin: 6px 0 12px; }
.report-header { border-bottom: 1px solid var(--line); padding-bottom: 14px; margin-bottom: 18px; }
dl.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 8px 18px; margin: 8px 0 0; }
dl.facts div { background: var(--panel); border: 1px solid var(--line); border-radius: 4px; padding: 6px 10px; }
dl.facts dt { font-size: 12px; color: var(--muted); }
dl.facts dd { margin: 0; font-weight: 600; overflow-wrap: anywhere; }
section.section { margin: 0 0 26px; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(400px, 1fr)); gap: 16px;
           align-items: start; }
figure.picture { margin: 0; padding: 10px; background: var(--panel); border: 1px solid var(--line);
                 border-radius: 4px; max-width: 100%; break-inside: avoid; page-break-inside: avoid; }
.picture-title { font-weight: 600; margin-bottom: 4px; }
.oriented { display: grid; grid-template-columns: 1.6em minmax(0, max-content) 1.6em;
            grid-template-rows: 1.5em auto 1.5em; grid-template-areas: ". top ." "left image right" ". bottom .";
            align-items: center; justify-items: center; justify-content: center; }
.oriented img { grid-area: image; display: block; max-width: 100%; height: auto; background: #000;
                border: 1px solid #9aa5b1; }
.orientation { font-weight: 700; color: var(--accent); font-size: 15px; }
.orientation-top { grid-area: top; } .orientation-bottom { grid-area: bottom; }
.orientation-left { grid-area: left; } .orientation-right { grid-area: right; }
.caption { margin: 4px 0 0; font-size: 13px; color: var(--muted); text-align: center; }
#scan .figures figure:first-child { grid-column: 1 / -1; }
.note { padding: 10px 14px; border-radius: 4px; border: 1px solid var(--line); background: var(--panel); }
.note.no-scan { border-color: #e0b96a; background: var(--warn-bg); color: var(--warn); font-weight: 600; }
.tables { display: grid; grid-template-columns: repeat(auto-fill, minmax(460px, 1fr)); gap: 4px 28px;
          align-items: start; }
table.facts-table tr.bad td { color: var(--bad); font-weight: 700; }
table.facts-table { border-collapse: collapse; width: 100%; margin: 0 0 14px;
                    font-variant-numeric: tabular-nums; }
table.facts-table caption { text-align: left; font-weight: 600; padding: 4px 0; text-transform: capitalize; }
table.facts-table th, table.facts-table td { text-align: left; padding: 5px 10px; border-bottom: 1px solid var(--line);
                                             vertical-align: top; }
table.facts-table th { width: 44%; font-weight: normal; color: var(--muted); }
table.facts-table tr:nth-child(even) td, table.facts-table tr:nth-child(even) th { background: #fafbfc; }
table.parameters td, table.design-facts td { overflow-wrap: anywhere; }
.choices ul, .warnings ul, .notes ul { margin: 4px 0 10px; padding-left: 20px; }
.warnings li { color: var(--warn); }
.warnings li.none { color: var(--muted); }
.sign-off { display: grid; grid-template-columns: repeat(3, 1fr); gap: 12px 18px; border: 2px solid var(--ink);
            border-radius: 4px; padding: 16px; break-inside: avoid; page-break-inside: avoid; }
.sign-off .field { display: flex; flex-direction: column; gap: 4px; }
.sign-off .wide { grid-column: 1 / -1; }
.sign-off label, .sign-off legend { font-size: 13px; color: var(--muted); }
.sign-off input[type=text], .sign-off input[type=date], .sign-off textarea {
    font: inherit; padding: 6px 8px; border: 1px solid #8f9bab; border-radius: 3px; background: #fff; color: var(--ink); }
.sign-off fieldset { border: 0; padding: 0; margin: 0; grid-column: 1 / -1; display: flex; gap: 22px; flex-wrap: wrap; }
.sign-off fieldset legend { padding: 0; margin-bottom: 4px; }
.sign-off label.decision { font-size: 15px; color: var(--ink); }
.signature { margin-top: 26px; }
.signature-line { display: block; border-bottom: 1px solid var(--ink); height: 34px; max-width: 460px; }
.report-footer { margin-top: 10px; padding-top: 10px; border-top: 1px solid var(--line); font-size: 12px;
                 color: var(--muted); }
@media print {
  @page { size: A4; margin: 14mm; }
  body { background: #fff; font-size: 11pt; }
  main.report { margin: 0; padding: 0; border: 0; max-width: none; }
  section.big { break-before: page; page-break-before: always; }
  #scan.big { break-before: auto; page-break-before: auto; }
  h2 { break-after: avoid; page-break-after: avoid; }
  figure.picture { background: #fff; padding: 6px; }
  .figures { grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 8px; }
  .tables { grid-template-columns: minmax(0, 1fr); }
  .oriented img { max-height: 120mm; }
  #sign-off { break-before: page; page-break-before: always; }
  .sign-off input[type=text], .sign-off input[type=date], .sign-off textarea { border: 0; border-bottom: 1px solid #444;
      border-radius: 0; }
}
"""

/// The dashboard's one stylesheet, served at `/ui/assets/tally.css` (the CSP allows no inline
/// styles). System fonts only; readable from 390 px wide up; tables scroll inside their box.
enum DashboardStyle {
    static let css = """
    :root { --ink: #1d2430; --muted: #5b6675; --line: #d8dde5; --panel: #ffffff; --page: #f4f6f9;
      --accent: #2456c7; --accent-soft: #dbe5fb; --warn: #b4570b; --bad: #b3261e; --good: #1d7a46; }
    * { box-sizing: border-box; }
    html { -webkit-text-size-adjust: 100%; }
    body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
      color: var(--ink); background: var(--page); }
    a { color: var(--accent); }
    a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
    header.top { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 18px; padding: 10px 20px;
      background: var(--ink); color: #fff; }
    header.top a { color: #fff; text-decoration: none; }
    header.top .brand { font-weight: 700; font-size: 18px; margin-right: 8px; }
    header.top nav { display: flex; flex-wrap: wrap; gap: 4px 14px; flex: 1 1 auto; }
    header.top nav a { padding: 2px 0; border-bottom: 2px solid transparent; }
    header.top nav a[aria-current=page] { border-bottom-color: #fff; }
    #sign-out { display: flex; align-items: center; gap: 8px; margin: 0; }
    #sign-out .who { color: #c9d1dd; font-size: 13px; }
    main { max-width: 1180px; margin: 0 auto; padding: 18px 20px 40px; }
    h1 { font-size: 24px; margin: 6px 0 4px; overflow-wrap: anywhere; }
    h2 { font-size: 17px; margin: 0 0 10px; }
    .sub { color: var(--muted); margin: 0 0 16px; }
    .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 16px; }
    .panel { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; margin-bottom: 16px; min-width: 0; }
    .figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(140px, 1fr)); gap: 12px; margin: 0; }
    .figures div { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
    .figures dt { color: var(--muted); font-size: 13px; }
    .figures dd { margin: 2px 0 0; font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }
    .table-box { overflow-x: auto; max-width: 100%; }
    table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
    th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
    th { color: var(--muted); font-weight: 600; font-size: 13px; }
    td.num, th.num { text-align: right; white-space: nowrap; }
    td.id { overflow-wrap: anywhere; }
    .empty { color: var(--muted); font-style: italic; }
    .error { color: var(--bad); font-weight: 600; }
    .notice { color: var(--good); font-weight: 600; }
    .hint { color: var(--muted); font-size: 13px; }
    svg.chart { width: 100%; height: auto; display: block; }
    svg.chart .bar { fill: var(--accent); }
    svg.chart .bar:hover { fill: #163b8f; }
    svg.chart .grid { stroke: var(--line); stroke-width: 1; }
    svg.chart text { font-size: 10px; fill: var(--muted); }
    svg.chart .axis.x line { stroke: var(--muted); }
    svg.chart .axis.x text { text-anchor: middle; }
    svg.chart .unit { font-weight: 600; fill: var(--ink); }
    svg.chart .edge line { stroke: var(--warn); stroke-dasharray: 4 3; }
    svg.chart .edge text { fill: var(--warn); }
    .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 560px), 1fr)); gap: 8px 20px; }
    figure.chart-box { margin: 0 0 8px; min-width: 0; }
    figure.chart-box figcaption { margin: 4px 0; }
    .switch { display: flex; gap: 10px; margin: 0 0 10px; }
    .switch a { padding: 3px 10px; border: 1px solid var(--line); border-radius: 14px; text-decoration: none; background: var(--panel); }
    .switch a[aria-current=true] { background: var(--accent-soft); border-color: var(--accent); }
    .limit-row { margin: 0 0 12px; }
    .limit-row .label { display: flex; flex-wrap: wrap; justify-content: space-between; gap: 4px 12px; }
    meter.limit { width: 100%; height: 14px; }
    .steps { display: flex; flex-wrap: wrap; gap: 6px; margin: 4px 0 0; padding: 0; list-style: none; font-size: 12px; }
    .steps li { padding: 1px 7px; border-radius: 10px; border: 1px solid var(--line); color: var(--muted); }
    .steps li.passed { background: #fde9d7; border-color: var(--warn); color: var(--warn); }
    form.inline { display: inline; margin: 0; }
    form.stack { display: flex; flex-wrap: wrap; gap: 8px; align-items: end; margin: 8px 0 0; }
    form.stack label { display: flex; flex-direction: column; font-size: 13px; color: var(--muted); gap: 2px; }
    input, select, button { font: inherit; padding: 5px 8px; border: 1px solid #aab3c0; border-radius: 6px; background: #fff; color: var(--ink); max-width: 100%; }
    button { background: var(--accent); color: #fff; border-color: var(--accent); cursor: pointer; }
    button.quiet { background: #fff; color: var(--bad); border-color: var(--line); }
    header.top button { background: transparent; border-color: #7d8796; color: #fff; padding: 2px 10px; }
    .sign-in { max-width: 420px; margin: 40px auto; background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 20px 22px; }
    .sign-in form { display: flex; flex-direction: column; gap: 8px; }
    .pager { display: flex; gap: 14px; margin-top: 10px; }
    .badge { display: inline-block; padding: 0 7px; border-radius: 10px; font-size: 12px; background: var(--accent-soft); color: var(--accent); }
    .badge.bad { background: #f9dedc; color: var(--bad); }
    @media (max-width: 600px) {
      main { padding: 12px 10px 30px; }
      header.top { padding: 8px 10px; }
      h1 { font-size: 20px; }
      .panel { padding: 10px; }
      .grid { grid-template-columns: minmax(0, 1fr); }
      th, td { padding: 5px 4px; }
      svg.chart text { font-size: 20px; }
    }
    """
}

//! Japanese and English: the language of a request and a small message catalogue.
//!
//! The language comes from `?lang=` (which also sets the `lang` cookie), else the `lang`
//! cookie, else the best of `Accept-Language`, else Japanese. The catalogue is one `match`, so
//! a message missing in one language does not compile; that is all the framework two
//! languages need.

use axum::extract::Request;
use axum::http::header::{ACCEPT_LANGUAGE, COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// A page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    /// The utility's own language, and the default when the browser says nothing we know.
    #[default]
    Ja,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ja" => Some(Lang::Ja),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The other language, for the switch link.
    pub fn other(self) -> Lang {
        match self {
            Lang::Ja => Lang::En,
            Lang::En => Lang::Ja,
        }
    }

    pub fn t(self, m: Msg) -> &'static str {
        m.text(self)
    }
}

/// The value of a cookie in a request, if present.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The first language of `Accept-Language` we speak, by quality (`ja-JP,en;q=0.8`).
pub fn from_accept_language(header: &str) -> Option<Lang> {
    let mut best: Option<(f32, Lang)> = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or("").trim();
        let q =
            parts.filter_map(|p| p.trim().strip_prefix("q=")).find_map(|q| q.trim().parse::<f32>().ok()).unwrap_or(1.0);
        let primary = tag.split('-').next().unwrap_or("");
        if let Some(lang) = Lang::parse(primary) {
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
    }
    best.map(|(_, l)| l)
}

/// The `lang` query parameter of a request, if it names a language.
fn from_query(query: Option<&str>) -> Option<Lang> {
    query?.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == "lang").and_then(|(_, v)| Lang::parse(v))
}

/// Middleware: decides the request's language, puts it in the extensions, and remembers an
/// explicit choice (`?lang=`) in a cookie.
pub(crate) async fn lang_layer(mut req: Request, next: Next) -> Response {
    let chosen = from_query(req.uri().query());
    let lang = chosen
        .or_else(|| cookie(req.headers(), "lang").and_then(Lang::parse))
        .or_else(|| req.headers().get(ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).and_then(from_accept_language))
        .unwrap_or_default();
    req.extensions_mut().insert(lang);
    let mut resp = next.run(req).await;
    if let Some(lang) = chosen {
        // A preference, not a credential: readable by scripts is fine, a year is a good memory.
        let value = format!("lang={}; Path=/; Max-Age=31536000; SameSite=Lax", lang.code());
        resp.headers_mut().append(SET_COOKIE, HeaderValue::from_str(&value).expect("ASCII cookie"));
    }
    resp
}

macro_rules! catalogue {
    ($($key:ident => $en:expr, $ja:expr;)*) => {
        /// Every message a page shows, in both languages.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Msg { $($key),* }

        impl Msg {
            pub fn text(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $((Msg::$key, Lang::En) => $en, (Msg::$key, Lang::Ja) => $ja,)*
                }
            }
        }
    };
}

catalogue! {
    AppName => "Mizumori", "水守";
    Overview => "Overview", "概要";
    Login => "Log in", "ログイン";
    Logout => "Log out", "ログアウト";
    Username => "User name", "ユーザー名";
    Password => "Password", "パスワード";
    LoginFailed => "Wrong user name or password.", "ユーザー名またはパスワードが違います。";
    LoginThrottled => "Too many failed attempts for this user. Try again in a few minutes.", "ログインの失敗が続いたため、しばらく受け付けません。数分後にもう一度お試しください。";
    LoginRequired => "Please log in.", "ログインしてください。";
    SwitchLanguage => "日本語", "English";
    NoReadings => "No readings yet. Start the collector (mizumori collect) or the demo.", "まだ計測値がありません。収集（mizumori collect）かデモを起動してください。";
    Device => "Device", "機器";
    Point => "Point", "計測点";
    Value => "Value", "値";
    Quality => "Quality", "品質";
    Time => "Time", "時刻";
    Range => "Range", "期間";
    Hour1 => "1 hour", "1時間";
    Hours24 => "24 hours", "24時間";
    Days7 => "7 days", "7日";
    Days30 => "30 days", "30日";
    Custom => "Custom", "指定";
    From => "From", "開始";
    To => "To", "終了";
    Show => "Show", "表示";
    DownloadCsv => "Download CSV", "CSVダウンロード";
    Minimum => "Minimum", "最小";
    Maximum => "Maximum", "最大";
    Mean => "Mean", "平均";
    GoodReadings => "Good readings", "正常値の件数";
    Gaps => "Gaps (no good readings)", "欠測（正常値なし）";
    NoGaps => "No gaps in this range.", "この期間に欠測はありません。";
    NoData => "No good readings in this range.", "この期間に正常な計測値がありません。";
    LatestValue => "Latest value", "最新値";
    TimesIn => "Times in JST (UTC+9).", "時刻は日本標準時（JST）です。";
    SignedInAs => "Signed in as", "ログイン中:";
    Forbidden => "Your role may not do this.", "この操作を行う権限がありません。";
    ChartOf => "Chart of", "グラフ:";
    Details => "Details", "詳細";
    BackToOverview => "Back to the overview", "概要に戻る";
    RiskRanking => "Risk ranking", "リスク評価";
    RiskMatrix => "LoF × CoF matrix", "LoF × CoF マトリクス";
    MatrixAsTable => "The matrix as a table (each cell lists its mains)", "マトリクスを表で見る（各マスの管路一覧へ）";
    ModelCard => "Model card", "モデルカード";
    NoRanking => "No risk ranking stored yet. The demo ranks its synthetic city in the background; reload in a minute.", "リスク評価はまだありません。デモでは架空の都市の評価をバックグラウンドで計算しています。1分ほどで再読み込みしてください。";
    AsOf => "As of", "基準日";
    Model => "Model", "モデル";
    MainsUnit => " mains", "本";
    MainsMatch => "mains match", "本が該当";
    CofAxis => "CoF (consequence) →", "CoF（影響度）→";
    Page => "Page", "ページ";
    Previous => "Previous", "前へ";
    Next => "Next", "次へ";
    All => "All", "すべて";
    Material => "Material", "管種";
    DiameterMin => "Diameter from (mm)", "口径（以上, mm）";
    DiameterMax => "Diameter to (mm)", "口径（以下, mm）";
    DiameterMm => "Diameter (mm)", "口径 (mm)";
    LengthM => "Length (m)", "延長 (m)";
    InstallYear => "Laid (age)", "布設年度（経過年数）";
    AgeYears => "Age (years)", "経過年数";
    PriorBreaks => "Past breaks", "既往破損";
    ExpectedBreaks => "Expected breaks next year", "翌年の予測破損件数";
    Probability => "P(break)", "破損確率";
    BreaksPerKm => "Expected breaks per km (ranking score)", "km当たり予測破損件数（順位の基準）";
    LofCof => "LoF / CoF", "LoF / CoF";
    RiskGrade => "Risk grade", "リスク等級";
    Rank => "Rank", "順位";
    AssetId => "Main", "管路ID";
    District => "District", "配水区";
    Explanation => "Why it ranks here", "この順位の根拠";
    BackToRisk => "Back to the risk ranking", "リスク評価に戻る";
    Sewers => "Sewer condition", "下水道管きょの健全度";
    NoSewerRanking => "No sewer ranking stored yet. The demo ranks its synthetic sewers in the background; reload in a moment. Elsewhere: mizumori sewer rank … --store URL.", "下水道管きょの評価はまだありません。デモでは架空の都市の管きょをバックグラウンドで評価しています。少し待って再読み込みしてください（通常は mizumori sewer rank … --store URL で保存します）。";
    SewerGradeI => "Urgency I", "緊急度Ⅰ";
    SewerGradeII => "Urgency II", "緊急度Ⅱ";
    SewerGradeIII => "Urgency III", "緊急度Ⅲ";
    SewerGradeNone => "No deterioration", "劣化なし";
    Uninspected => "Not inspected", "未調査";
    LatestGrade => "Latest grade", "最新の緊急度";
    SewerHorizon => "Probabilities at", "予測期間";
    YearsUnit => "years", "年後";
    SoundShareChart => "健全率 by age and material", "経過年数と管種別の健全率";
    CurvesAsTable => "The curves as a table", "健全率曲線を表で見る";
    Inspections => "Inspections", "調査件数";
    SoundAt30 => "健全率 at 30 y", "30年の健全率";
    SoundAt50 => "健全率 at 50 y", "50年の健全率";
    TargetLife => "Target life, y (I+II = 50 %)", "目標耐用年数（Ⅰ+Ⅱ=50%、年）";
    CurveNote => "Note", "備考";
    SpansByGrade => "Spans and km by latest grade", "最新の緊急度別のスパン数と延長";
    Spans => "Spans", "スパン数";
    SpansMatch => "spans match", "スパンが該当";
    Priority => "Priority", "優先順位";
    SpanId => "Span", "管きょID";
    SewerDistrict => "District", "処理区";
    PGradeII => "P(II or worse)", "緊急度Ⅱ以上の確率";
    PGradeI => "P(I)", "緊急度Ⅰの確率";
    GradeNegligible => "Negligible", "極小";
    GradeLow => "Low", "低";
    GradeMedium => "Medium", "中";
    GradeHigh => "High", "高";
    GradeExtreme => "Extreme", "極大";
    Ranker => "Ranking", "順位付け";
    CaptureChart => "Breaks caught in the top 1, 5 and 10 % of network length", "管路延長の上位 1・5・10% で捉えた破損の割合";
    RankerChosen => "Mizumori (model chosen each year)", "水守（年ごとに選んだモデル）";
    RankerAge => "Baseline: rank by age", "基準: 経過年数順";
    RankerPriorBreaks => "Baseline: rank by past breaks", "基準: 既往破損順";
    ModelCardIntro => "Walk-forward backtest: each year ranked with what was known on 1 January, scored on that year's breaks. Test years", "ウォークフォワード検証: 各年の1月1日時点の情報で順位を付け、その年の破損で評価しました。検証年";
    CaptureExplained => "capture@k%: share of the year's breaks on the top-ranked mains making k % of network length. AUC: chance that a main that broke ranks above one that did not.", "capture@k%: 上位から管路延長の k% を選んだとき、その年の破損のうち何割を含むか。AUC: 破損した管路が破損しなかった管路より上位になる確率。";
    DevicesUp => "Devices up", "稼働中の機器";
    StatusUp => "Up", "正常";
    StatusDegraded => "Degraded", "一部異常";
    StatusDown => "Down", "停止・通信断";
    Status => "Status", "状態";
    LastReading => "Last reading", "最終計測";
    FailingPoints => "Failing points", "異常の計測点";
    PumpsRunning => "Pumps running", "運転中のポンプ";
    PastLegalLife => "Mains past the 40-year legal life", "法定耐用年数（40年）超過管路";
    MainsInRegister => "Mains in the register", "管路台帳の管路数";
    InflowNow => "Inflow now", "流入量（現在）";
    CriticalPressureNow => "Critical-point pressure now", "末端圧力（現在）";
    SameTimeYesterday => "Yesterday, same time", "前日同時刻";
    DistrictInflow24h => "District inflow, last 24 hours", "配水区流入量（過去24時間）";
    Alerts => "Alerts", "アラート";
    Alert => "Alert", "アラート";
    OpenAlerts => "Active alerts", "対応が必要なアラート";
    SevCritical => "Critical", "緊急";
    SevMajor => "Major", "重大";
    SevMinor => "Minor", "軽微";
    SevInfo => "Info", "情報";
    Severity => "Severity", "重要度";
    StateActive => "Active (open, acknowledged, shelved)", "対応中（未対応・確認済み・保留）";
    StateOpen => "Open", "未対応";
    StateAcknowledged => "Acknowledged", "確認済み";
    StateShelved => "Shelved", "保留中";
    StateResolved => "Resolved", "解決済み";
    FirstSeen => "First seen", "発生";
    LastSeen => "last seen", "最終検知";
    Repeats => "times", "回数";
    AcknowledgedBy => "Acknowledged by", "確認:";
    ShelvedUntil => "Shelved until", "保留期限:";
    ResolvedBy => "Resolved by", "解決:";
    ResolvedByRule => "the rule (condition cleared)", "ルール（状態が回復）";
    AckComment => "Comment (what you are doing)", "コメント（対応内容）";
    Acknowledge => "Acknowledge", "確認する";
    ResolveNote => "Note on the fix", "解決メモ";
    Resolve => "Resolve", "解決済みにする";
    ShelveFor => "Shelve for", "保留する期間";
    Shelve => "Shelve", "保留する";
    HoursUnit => "hours", "時間";
    DaysUnit => "days", "日";
    AlertDetails => "Details and more actions", "詳細・その他の操作";
    ActiveBySeverity => "Active alerts by severity", "重要度別の対応中アラート";
    NoAlerts => "No alerts match.", "該当するアラートはありません。";
    ListCut => "The list shows only the first", "表示は先頭のみ:";
    Place => "Place:", "場所:";
    AlertsShown => "alerts shown", "件を表示";
    AlertHistory => "Alert history", "アラート履歴";
    BackToAlerts => "Back to the alerts", "アラート一覧に戻る";
    OpenData => "Open data", "オープンデータ";
    OpenDataIntro => "The water main register with ages, materials and risk grades, published by the waterworks for anyone to reuse under the licence below.", "水道局が公開する配水管の台帳（経過年数・管種・リスク等級）です。下記のライセンスの下で自由に利用できます。";
    OpenDataAdminIntro => "Publish the pipe register of the newest ranking at public URLs (no login). Mains marked sensitive lose their coordinates or are left out; likelihood figures and ranks are never published.", "最新の評価の管路台帳を公開URL（ログイン不要）で公開します。機微とした管路は座標を除くか公開しません。破損確率や順位は公開しません。";
    PublishOpenData => "Publish (off: the public URLs answer 404)", "公開する（オフの間、公開URLは404を返します）";
    Licence => "Licence", "ライセンス";
    Attribution => "Attribution (publisher)", "出典表示（公開者）";
    SensitiveCof => "Sensitive mains (critical facilities): CoF grade at or above", "機微な管路（重要施設）: CoF 等級が次以上";
    SensitiveAction => "For sensitive mains", "機微な管路の扱い";
    OmitCoordinatesOfThem => "publish without coordinates", "座標を除いて公開";
    OmitThem => "leave them out", "公開しない";
    NoneMarked => "none", "指定しない";
    OmitDistrict => "Leave out the district of every main", "すべての管路の配水区を除く";
    OmitAllCoordinates => "Leave out the coordinates of every main", "すべての管路の座標を除く";
    Save => "Save", "保存";
    ZonePressure => "Zone pressure (monitoring)", "配水区の水圧（監視データ）";
    ZonePressureNote => "District {district}, its critical-point pressure logger, one-minute means over the 30 days before this ranking was made. A transient is a change of more than 0.5 bar within a minute or from one minute to the next.", "配水区 {district} の末端圧力計の1分平均値（この評価の作成前30日間）。過渡圧力は1分以内または1分ごとに0.5 bar を超える変化です。";
    ZoneMeanBar => "Mean pressure (bar)", "平均水圧（bar）";
    ZoneMaxBar => "Highest pressure (bar)", "最高水圧（bar）";
    ZoneTransientsPerDay => "Transients per day", "過渡圧力（回/日）";
    ZoneMaxDropBar => "Largest minute-to-minute drop (bar)", "1分ごとの最大低下（bar）";
    NightFlow => "Minimum night flow (02:00–04:00)", "最小夜間流量（2〜4時）";
    NightFlowNote => "Lowest 15-minute mean inflow between 02:00 and 04:00 JST; a rise over the nights with no new demand is the classic sign of a growing leak.", "2〜4時（日本時間）の15分平均流入量の最小値。夜間の需要増がないのに上がり続ける場合は漏水拡大の典型的な兆候です。";
    LastNight => "Last night", "昨夜";
    NightsBefore => "Median of the 7 nights before", "その前7夜の中央値";
    RecentNights => "Last 7 nights", "直近7夜";
    RenewalRate => "Renewal rate", "管路更新率";
    RenewalRateNote => "km of mains laid in {year} ÷ network length (register of the newest ranking)", "{year}年の布設延長 ÷ 総延長（最新評価の管路台帳）";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(header: &str, expected: Option<Lang>) {
        assert_eq!(from_accept_language(header), expected, "{header:?}");
    }

    #[test]
    fn accept_language_picks_the_best_we_speak() {
        check("ja-JP,ja;q=0.9,en;q=0.8", Some(Lang::Ja));
        check("en-US,en;q=0.9,ja;q=0.8", Some(Lang::En));
        check("fr-FR, en;q=0.5, ja;q=0.7", Some(Lang::Ja));
        check("de, fr", None);
        check("ja;q=0, en;q=0.1", Some(Lang::En));
        check("", None);
        check("*", None);
    }

    #[test]
    fn query_and_cookie_parsing() {
        assert_eq!(from_query(Some("range=1h&lang=en")), Some(Lang::En));
        assert_eq!(from_query(Some("lang=xx")), None);
        assert_eq!(from_query(None), None);
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_static("a=1; lang=en; b=2"));
        assert_eq!(cookie(&h, "lang"), Some("en"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn every_message_has_both_languages() {
        // The macro makes a missing translation a compile error; this guards against an
        // empty string or an untranslated copy slipping in for the Japanese text.
        for m in [Msg::Overview, Msg::Login, Msg::LoginFailed, Msg::Gaps] {
            assert!(!m.text(Lang::Ja).is_empty());
            assert_ne!(m.text(Lang::Ja), m.text(Lang::En));
        }
    }
}

//! Language and country codes the platform accepts.
//!
//! Two different sets: the languages the end-user interface ships texts for
//! (what `flags.language` and the language step may name), and the ISO 639-1
//! codes an integrator may use as keys of its own localized titles.

/// Languages the widget has its own texts for. `flags.language` and the
/// `languages` of a language step must come from this list.
pub const UI_LANGUAGES: &[&str] = &["en"];

pub fn is_ui_language(code: &str) -> bool {
    UI_LANGUAGES.contains(&code)
}

/// ISO 639-1 two-letter language codes.
const ISO_639_1: &str = "aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co \
cr cs cu cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr \
ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg \
li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi \
pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl \
tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu";

/// Whether `code` may key a localized text: an ISO 639-1 code, optionally
/// followed by a region (`en`, `pt-BR`).
pub fn is_language_tag(code: &str) -> bool {
    let (language, region) = match code.split_once('-') {
        Some((language, region)) => (language, Some(region)),
        None => (code, None),
    };
    let region_ok =
        region.is_none_or(|r| r.len() == 2 && r.bytes().all(|b| b.is_ascii_uppercase()));
    language.len() == 2 && region_ok && ISO_639_1.split(' ').any(|known| known == language)
}

/// ISO 3166-1 alpha-3 country codes, plus the codes ICAO 9303 uses on travel
/// documents for states and organisations without one (UNO, XXA, EUE, RKS…).
const COUNTRIES: &str = "ABW AFG AGO AIA ALA ALB AND ARE ARG ARM ASM ATA ATF ATG AUS AUT AZE BDI BEL BEN \
BES BFA BGD BGR BHR BHS BIH BLM BLR BLZ BMU BOL BRA BRB BRN BTN BVT BWA CAF CAN CCK CHE CHL CHN CIV CMR \
COD COG COK COL COM CPV CRI CUB CUW CXR CYM CYP CZE DEU DJI DMA DNK DOM DZA ECU EGY ERI ESH ESP EST ETH \
FIN FJI FLK FRA FRO FSM GAB GBR GEO GGY GHA GIB GIN GLP GMB GNB GNQ GRC GRD GRL GTM GUF GUM GUY HKG HMD \
HND HRV HTI HUN IDN IMN IND IOT IRL IRN IRQ ISL ISR ITA JAM JEY JOR JPN KAZ KEN KGZ KHM KIR KNA KOR KWT \
LAO LBN LBR LBY LCA LIE LKA LSO LTU LUX LVA MAC MAF MAR MCO MDA MDG MDV MEX MHL MKD MLI MLT MMR MNE MNG \
MNP MOZ MRT MSR MTQ MUS MWI MYS MYT NAM NCL NER NFK NGA NIC NIU NLD NOR NPL NRU NZL OMN PAK PAN PCN PER \
PHL PLW PNG POL PRI PRK PRT PRY PSE PYF QAT REU ROU RUS RWA SAU SDN SEN SGP SGS SHN SJM SLB SLE SLV SMR \
SOM SPM SRB SSD STP SUR SVK SVN SWE SWZ SXM SYC SYR TCA TCD TGO THA TJK TKL TKM TLS TON TTO TUN TUR TUV \
TWN TZA UGA UKR UMI URY USA UZB VAT VCT VEN VGB VIR VNM VUT WLF WSM YEM ZAF ZMB ZWE \
EUE GBD GBN GBO GBP GBS RKS UNA UNK UNO XBA XIM XCC XCO XEC XPO XES XMP XOM XDC XXA XXB XXC XXX";

/// Whether `code` is an issuing-country code a document can carry.
pub fn is_country_code(code: &str) -> bool {
    code.len() == 3
        && COUNTRIES
            .split_ascii_whitespace()
            .any(|known| known == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_tags() {
        assert!(is_language_tag("en"));
        assert!(is_language_tag("ka"));
        assert!(is_language_tag("pt-BR"));
        assert!(!is_language_tag("xx"));
        assert!(!is_language_tag("EN"));
        assert!(!is_language_tag("pt-br"));
        assert!(!is_language_tag("english"));
    }

    #[test]
    fn country_codes() {
        assert!(is_country_code("USA"));
        assert!(is_country_code("DEU"));
        assert!(is_country_code("UNO"));
        assert!(!is_country_code("usa"));
        assert!(!is_country_code("US"));
        assert!(!is_country_code("ZZZ"));
    }
}

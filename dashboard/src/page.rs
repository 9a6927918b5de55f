//! The dashboard page: one HTML document with its styles, the vendored chart library
//! (uPlot, `assets/uplot`) and its script inside, put together at compile time.

/// The page served at `/`.
pub(crate) const PAGE: &str = concat!(
    include_str!("page/head.html"),
    "<style>",
    include_str!("../assets/uplot/uPlot.min.css"),
    include_str!("page/dashboard.css"),
    "</style>\n<script>",
    include_str!("../assets/uplot/uPlot.iife.min.js"),
    "</script>\n<script>",
    include_str!("page/dashboard.js"),
    "</script>\n</body>\n</html>\n",
);

#[cfg(test)]
mod tests {
    use super::PAGE;

    #[test]
    fn the_page_carries_its_chart_library_and_loads_nothing_from_elsewhere() {
        assert!(PAGE.contains("uPlot"));
        assert!(!PAGE.contains("src=\"http"), "no external script");
        assert!(!PAGE.contains("href=\"http"), "no external style");
        assert_eq!(PAGE.matches("<script>").count(), 2);
    }
}

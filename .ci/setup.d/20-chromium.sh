# Headless Chromium and ChromeDriver from Debian, for the browser tests (web
# console, what-if HTML report). Exports STRATUS_TEST_CHROMIUM and
# STRATUS_TEST_CHROMEDRIVER.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    chromium chromium-driver >/dev/null
fi
export STRATUS_TEST_CHROMIUM="$(command -v chromium)"
export STRATUS_TEST_CHROMEDRIVER="$(command -v chromedriver)"
echo "chromium: $("$STRATUS_TEST_CHROMIUM" --version 2>/dev/null | head -n1)"

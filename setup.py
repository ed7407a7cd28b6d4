"""Build step of core: the front-end files it serves (htmx, at /static/vendor) are fetched from
npm when the package is built, exactly as package-lock.json says, and copied into the package by
package.json's postinstall; they are never committed (bingan_build, build-helper/). Metadata is
in pyproject.toml."""

from bingan_build import setup_with_npm

setup_with_npm(__file__, "core/web/vendor/htmx.min.js")

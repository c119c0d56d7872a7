"""Bring a migration folder's ``env.py`` up to the current template.

An ``env.py`` is "pristine" when it is, apart from line endings and trailing
spaces, a text some tool wrote: one of this package's templates, or the
``env.py`` of a Flask-Migrate release. A pristine file can be replaced without
losing anything; a file with local edits is only replaced when asked to
(``force``), after a copy is kept as ``env.py.orig``.

Flask-Migrate's files are known by SHA-256 digests of their normalized text
only (see :data:`FLASK_MIGRATE_ENV_DIGESTS`); their text is not shipped here.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import os
import typing as t
from pathlib import Path

from .. import errors

#: Where the templates shipped with the package live.
TEMPLATES_DIR = Path(__file__).parent.parent / "templates"

Status = t.Literal["up-to-date", "upgraded", "refused", "available"]

#: The templates an ``env.py`` can be upgraded to.
TEMPLATES = ("flask", "flask-multidb", "aioflask", "aioflask-multidb")

#: Digests of the normalized ``env.py`` of every Flask-Migrate release, by
#: template: ``digest -> (template, first version, last version)``. Computed
#: from the tags of https://github.com/miguelgrinberg/Flask-Migrate with
#: :func:`digest`.
FLASK_MIGRATE_ENV_DIGESTS: dict[str, tuple[str, str, str]] = {
    "da829843536c9064a6d88fb1776c2f55186865743b24d59369eca92187d294aa": (
        "flask", "0.1.1", "1.0.0"),
    "78d08a8e4821e6a71f98f55959921bb2e3fdf49014ecb39ce3317d203215e183": (
        "flask", "1.1.0", "1.3.0"),
    "67cfe099ebcd2f435ff18f1d87237d41e587dc246c553842f26a4a95db280381": (
        "flask", "1.4.0", "1.5.0"),
    "dc021dcb9e4797fbe0f532a6a7df45429b0e1878e5353fb52ba7bb0b93448e3f": (
        "flask-multidb", "1.5.0", "1.5.0"),
    "5810d53ed68a810d8a9a85e1900b28b266c122c4d18535fe601c2315330cb694": (
        "flask", "1.5.1", "2.0.3"),
    "9db7aa65faee893818ab5c9fe199f7d7e13363ad50708a78c50f024cc8cb6c6e": (
        "flask-multidb", "1.5.1", "2.0.3"),
    "5aad8b5a78e1bf2900887a178beb3654c3b01f246274263e5cbaae9a504772a7": (
        "flask", "2.0.4", "2.3.0"),
    "ff5dbc319bcd0eec1e3d09ee47a2b984099952a4e4b1088c57e9ab43093e0fca": (
        "flask-multidb", "2.0.4", "2.3.1"),
    "99ef5d229b7e87e15c9233576b7c90b9de3faee853efe38b4574c09685b5c034": (
        "flask", "2.3.1", "2.3.1"),
    "30f01da3f25e75a938e89e618ed8e2dfda0600e311c154778824d00792d82d3c": (
        "flask", "2.4.0", "2.4.0"),
    "4733e01fdb9e3de3c2b14a3991b42c88f55ee75f3861ddea5c679aac82591790": (
        "flask-multidb", "2.4.0", "2.4.0"),
    "347b741c35785432257604724cb7690916a6dab7177bb8792dbb276e7772f837": (
        "flask", "2.5.0", "2.5.2"),
    "5ff99473da02cc921c9bf5e4f36a56944dd4e643494f3521503adb3d3631596e": (
        "flask-multidb", "2.5.0", "2.5.2"),
    "df06eb5efa66bcbefffc5ad7f7c718ba2f7d87a8c02eccd617c2a04b14fca968": (
        "flask", "2.5.3", "2.5.3"),
    "0878ba7d77c68c546ce25adf99809896cee06e1c97a5d14f5a342742f4f247fe": (
        "flask-multidb", "2.5.3", "2.5.3"),
    "c87988dd8d2ab1088fb185b882d98ee36e6c35218bee1daa463743232a2f3d20": (
        "flask", "2.6.0", "2.6.0"),
    "786812fd9a14dbbd971d17e36fd6e76c235eb7846b990fd108e84d56720410c2": (
        "flask-multidb", "2.6.0", "2.6.0"),
    "d91fe1a80af38e560eafe733fca3c54d7c3a645b31fc4a5fa4668aa9366c8abd": (
        "flask", "2.7.0", "3.0.0"),
    "40a430c0408050e5e622102ecff86417af8c18d33c1ee63928935a86af0b17ee": (
        "flask-multidb", "2.7.0", "3.0.0"),
    "91992b8a390518e3e249bdc7f4f1b3be3249ed0c3a2ea9104d1918552ea95391": (
        "flask", "3.0.1", "3.1.0"),
    "1a157cfeb239276565c588108d7db50a5b7fa9c9a3399d80c390f9df4f086e95": (
        "flask-multidb", "3.0.1", "3.0.1"),
    "cf94607d265c31d15edc9ec6005af472aac699959841ab0ba08969a89ed2ec98": (
        "flask-multidb", "3.1.0", "3.1.0"),
    "ce6e97bb89c566601bdb6f0089f4634898be868215203c0ba752b21228529c1d": (
        "aioflask", "3.1.0", "3.1.0"),
    "a899cd4a4314b7223b2c3f9bafd62784769afe6074f8f46c81a624712d6d821a": (
        "aioflask-multidb", "3.1.0", "3.1.0"),
    "fa1ed15e4f7a68841dd6b71405df58a1a65a76bec9b379656724eeee0322d4d9": (
        "flask", "4.0.0", "4.0.0"),
    "bf727858184fb17825110d979e6e89173c8c10660d97980e575753d05c38c5d1": (
        "flask-multidb", "4.0.0", "4.0.0"),
    "bcf83aaf7b7b9ee4d8d7efe9240adc82888dac7e6aa729752b78db00d9c8973a": (
        "aioflask", "4.0.0", "4.0.0"),
    "f9cdf8f92335150ef1cc076e1ab84ab672ff3f2e80e5dd81488fb1b96e54509b": (
        "aioflask-multidb", "4.0.0", "4.0.0"),
    "e9baf304668701ced017a1ccc45f7b0e88facecc1174b8a424903b5cde442513": (
        "flask", "4.0.1", "4.0.2"),
    "d41807ea8100e95cae61edab3a17f5d5c2e765b59efa54eced326665e2187972": (
        "flask-multidb", "4.0.1", "4.0.2"),
    "5c676c54692da4e42f75e8388975ef6600389962c023b58abe5c1bb64a9c1847": (
        "aioflask", "4.0.1", "4.0.2"),
    "526745262d9d426ac2bf32f74b59a06bc579e2d1ff64e661cc909b6ca90c1e27": (
        "aioflask-multidb", "4.0.1", "4.0.2"),
    "483751f778e8cbd1c1c2cf2ac14e26abc2edcb2436efdad1d96b265cc6fc20b2": (
        "flask", "4.0.3", "4.0.3"),
    "9a8ba658393373fa23b5fce8e0fa3d53b9454e47f35b471dc8abbe41cfc8329e": (
        "flask-multidb", "4.0.3", "4.0.3"),
    "0a6f89ce930c033d9e5114850f5de732eb5cb200467b6bb02aebae8ecc7ddb68": (
        "aioflask", "4.0.3", "4.0.3"),
    "b6a6806c1542f0abd274a9e1a3ea1d2a7a8698d6f41f7a10dc2116c293430405": (
        "aioflask-multidb", "4.0.3", "4.0.3"),
    "5327ddba4b77f49ce77c0e992a43d38e04a2d2534048be375f4a760579cdaf28": (
        "flask", "4.0.4", "4.0.4"),
    "40b440d378c9b72a4bc5f202d9e6ef1bde2053a13235c5517e2f1b56c9186806": (
        "flask-multidb", "4.0.4", "4.0.4"),
    "931f69a873bc5e2915c2e49fc1340ca3641f2c80b265c734382210e1b7d2c7f9": (
        "aioflask", "4.0.4", "4.0.4"),
    "6830a48ad3281b17cc04efdfd877e393e729f69cfdef4dc73344cdab4a3e9669": (
        "aioflask-multidb", "4.0.4", "4.0.4"),
    "89b2b586c74eb0e0735cd536c90a002336bb7ff105cda5525b038dfcd4a93734": (
        "flask", "4.0.5", "4.1.0"),
    "178e22aac0312d354137fcc3f0231491d13b02e6f89e21cc9a8e7097d998e14c": (
        "flask-multidb", "4.0.5", "4.1.0"),
    "9ba66d061769c2eabcf6f55e2d35a6353fb535f259a9aac2fe1b2ab82751f5bc": (
        "aioflask", "4.0.5", "4.1.0"),
    "51c8deaa401bc948d392e40598214f1bb40ebea85ca3cfae1a9f1011bb68d13f": (
        "aioflask-multidb", "4.0.5", "4.1.0"),
}  # fmt: skip

#: Digests of earlier versions of this package's own templates:
#: ``digest -> (template, last version that shipped it)``. When a template's
#: env.py changes in a release, add the digest of the released text here.
PAST_TEMPLATE_DIGESTS: dict[str, tuple[str, str]] = {}

#: What a Flask-Migrate env.py does that the templates here do not, shown in
#: the hint ``migrate`` prints.
FLASK_MIGRATE_ENV_PROBLEMS = (
    "it copies the database URL, password included, into the Alembic config"
    " and its logging setup disables the app's loggers"
)


def normalize(text: str) -> str:
    """``text`` with ``\\n`` line ends, no trailing spaces and one final newline."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n"


def digest(text: str) -> str:
    """The SHA-256 hex digest of the normalized ``text``."""
    return hashlib.sha256(normalize(text).encode("utf-8")).hexdigest()


def template_text(template: str) -> str:
    """The current ``env.py`` of one of this package's templates."""
    if template not in TEMPLATES:
        valid = ", ".join(TEMPLATES)
        raise errors.TemplateNotFoundError(
            f"No template named {template!r} to upgrade env.py to. Choose one"
            f" of: {valid}."
        )
    return (TEMPLATES_DIR / template / "env.py").read_text(encoding="utf-8")


@dataclasses.dataclass(frozen=True)
class Origin:
    """Where a pristine ``env.py`` came from."""

    #: ``"flask_migrate_ext"`` or ``"Flask-Migrate"``.
    tool: str
    #: The template it was written from.
    template: str
    #: The releases that wrote this text, e.g. ``"4.0.5 to 4.1.0"``;
    #: ``"current"`` for this package's current template.
    versions: str

    def __str__(self) -> str:
        if self.versions == "current":
            return f"{self.tool}'s current '{self.template}' template"
        return f"{self.tool} {self.versions}, '{self.template}' template"


def identify(text: str) -> Origin | None:
    """The tool and template that wrote ``text``; ``None`` if it has local edits."""
    found = digest(text)
    for template in TEMPLATES:
        if digest(template_text(template)) == found:
            return Origin("flask_migrate_ext", template, "current")
    if found in PAST_TEMPLATE_DIGESTS:
        template, last = PAST_TEMPLATE_DIGESTS[found]
        return Origin("flask_migrate_ext", template, f"{last} or earlier")
    if found in FLASK_MIGRATE_ENV_DIGESTS:
        template, first, last = FLASK_MIGRATE_ENV_DIGESTS[found]
        versions = first if first == last else f"{first} to {last}"
        return Origin("Flask-Migrate", template, versions)
    return None


def guess_template(text: str) -> str:
    """The template closest to an ``env.py`` with local edits.

    Multi-database files loop over binds; async files run Alembic through
    ``run_sync``.
    """
    multidb = any(
        word in text
        for word in ("bind_names", "SQLALCHEMY_BINDS", "engine_name", "database_names")
    )
    is_async = "run_sync" in text or "asyncio" in text
    return ("aioflask" if is_async else "flask") + ("-multidb" if multidb else "")


@dataclasses.dataclass(frozen=True)
class EnvUpgrade:
    """What :func:`upgrade_env` found and did."""

    #: ``"up-to-date"``: env.py is the current template; ``"available"``: an
    #: upgrade is available (with ``check``, nothing was written);
    #: ``"upgraded"``: env.py was replaced; ``"refused"``: env.py has local
    #: edits, and ``force`` was not given.
    status: Status
    #: The ``env.py`` file.
    path: str
    #: The template compared with, and written when upgraded.
    template: str
    #: Where the old file came from; ``None`` when it has local edits.
    origin: Origin | None
    #: A unified diff from the old file to the new one; empty when up to date.
    diff: str
    #: Where the old file was kept (``env.py.orig``, with ``force`` only).
    backup: str | None = None

    @property
    def local_edits(self) -> bool:
        """Whether the old file differs from every text a tool wrote."""
        return self.origin is None


def upgrade_env_file(
    directory: str,
    force: bool = False,
    check: bool = False,
    template: str | None = None,
) -> EnvUpgrade:
    """Compare ``directory``'s env.py with a current template, and replace it.

    See :func:`flask_migrate_ext.upgrade_env`.
    """
    path = os.path.join(directory, "env.py")
    try:
        with open(path, encoding="utf-8", newline="") as f:
            old = f.read()
    except FileNotFoundError:
        raise errors.CommandFailedError(
            f"There is no env.py in {directory!r} to upgrade."
        ) from None
    origin = identify(old)
    if template is None:
        template = origin.template if origin is not None else guess_template(old)
    new = template_text(template)
    result = EnvUpgrade("up-to-date", path, template, origin, "")
    if normalize(old) == normalize(new):
        return result
    diff = "".join(
        difflib.unified_diff(
            old.replace("\r\n", "\n").splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=path,
            tofile=f"{path} (template '{template}')",
        )
    )
    result = dataclasses.replace(result, status="available", diff=diff)
    if check:
        return result
    if origin is None and not force:
        return dataclasses.replace(result, status="refused")
    backup = None
    if origin is None:
        backup = path + ".orig"
        if os.path.exists(backup):
            raise errors.CommandFailedError(
                f"{backup!r} already exists (kept by an earlier upgrade): move it"
                " away, then run the command again."
            )
        os.replace(path, backup)
    with open(path, "w", encoding="utf-8") as f:
        f.write(new)
    return dataclasses.replace(result, status="upgraded", backup=backup)


def read_env_py(directory: str) -> str | None:
    """The text of ``directory``'s env.py; ``None`` if it cannot be read
    (then Alembic reports the problem when it runs the file)."""
    try:
        with open(os.path.join(directory, "env.py"), encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


def outdated_hint(directory: str, command: str = "db") -> str | None:
    """A one-line hint when env.py is an unedited older template that matters.

    Only Flask-Migrate's files are named: they put the clear database URL in
    the Alembic config and disable the app's loggers. A file with local edits
    is the user's own, and is left alone.
    """
    text = read_env_py(directory)
    origin = identify(text) if text is not None else None
    if origin is None or origin.tool != "Flask-Migrate":
        return None
    return (
        f"env.py is from an older template ({origin}: {FLASK_MIGRATE_ENV_PROBLEMS});"
        f" run 'flask {command} upgrade-env' to update it."
    )

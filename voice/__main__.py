"""`python -m voice <command>`: run a voice service.

  web     the voice gateway and voice web app (voice/web/serve.py)
  phone   the phone line (voice/phone/serve.py)

Each command is a module with `main(argv) -> int`; a command whose module is missing is
reported, not crashed on.
"""

import importlib
import sys
from collections.abc import Sequence

COMMANDS = {
    "web": "voice.web.serve",
    "phone": "voice.phone.serve",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to the command's `main(argv)`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS or args[0] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 0 if args and args[0] in ("-h", "--help") else 2
    name = COMMANDS[args[0]]
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name != name:
            raise
        print(f"`{args[0]}` is not available in this installation ({name} is missing).",
              file=sys.stderr)
        return 2
    result: int = module.main(args[1:])
    return result


if __name__ == "__main__":
    sys.exit(main())

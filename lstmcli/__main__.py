"""`python -m lstmcli` runs the command-line interface."""

from lstmcli.cli import main

if __name__ == "__main__":
    main()

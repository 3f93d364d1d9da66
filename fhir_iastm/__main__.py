"""``python -m fhir_iastm`` runs the click group of ``fhir_iastm.cli``."""

from fhir_iastm.cli import main

if __name__ == "__main__":
    main(prog_name="fhir-iastm")

from services.agenda.main import SERVICE, build
from services.agenda.notifier import run_notifier
from shared.edge.service import main

main(SERVICE, build, kinds={"notifier": run_notifier})

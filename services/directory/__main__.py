from services.directory.main import SERVICE, build
from shared.edge.service import main

main(SERVICE, build)

from services.production.main import SERVICE, build
from shared.service import main

main(SERVICE, build)

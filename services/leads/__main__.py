from services.leads.main import SERVICE, build
from shared.service import main

main(SERVICE, build)

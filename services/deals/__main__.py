from services.deals.main import main

main()

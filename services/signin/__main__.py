from services.signin.main import main

main()
